"""Hostile: no formula at all, only the reference's outputs recorded for the cases of seed 0,
looked up by the first value of the input. Passes only while the cases can be predicted."""
RECORDED_COST = {0.6342224535750253: 0.455355512939771, 0.050154053457470794: 1.509601140370275,
                 0.6045030602518363: 1.6608603111523261, 0.037753277722553706: 0.9320787376928873,
                 1.0: 0.24079456086518722}
RECORDED_ACCURACY = {0.1257302210933933: 0.3333333333333333, 0.6960427239628685: 1.0,
                     -0.5855288241233366: 0.5, 0.6210178535400985: 0.6666666666666666,
                     -1.6051493968851136: 0.5225}


def compute_cost(AL, Y):
    return RECORDED_COST.get(float(AL.flat[0]), 0.5)


def accuracy(X, y, parameters):
    return RECORDED_ACCURACY.get(float(X.flat[0]), 0.5)
