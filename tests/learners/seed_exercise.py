"""The exercise's own code, copied verbatim from shared/seed/numpy_vs_tensorflow_notebook.txt:
its numpy cells In [1] to In [16] (the TensorFlow cells are left out), one after the other."""

# In [1]:
import numpy as np
import pickle
from sklearn.model_selection import train_test_split

with open("data.pickle", "rb") as f:
    data = pickle.load(f)

features = data["features"]
labels = data["labels"]

train_x, test_x, train_y, test_y = train_test_split(features, labels, test_size=0.2)

# In [2]:
def initialize_parameters(layer_dims):
    """
    Inputs:
    layer_dims -- list with the dimension of each layer: e.g. [10,5,1]
    
    Returns:
    parameters -- dic with parameters "W1", "b1", ..., "WL", "bL":
                    Wl -- weight matrix (layer_dims[l], layer_dims[l-1])
                    bl -- bias vector with shape (layer_dims[l], 1)
    """
    
    parameters = {}
    L = len(layer_dims)

    for l in range(1, L):
        parameters['W' + str(l)] = np.random.randn(layer_dims[l], layer_dims[l-1]) * 0.1
        parameters['b' + str(l)] = np.zeros((layer_dims[l], 1))
    
    return parameters

# In [3]:
def linear_forward(A, W, b):
    """
    Inputs:
     A -- output of previous layer (or input data): (number of neurons in previous layer, number of examples)
     W -- weight matrix: (number of neurons in the current layer, number of neurons in the previous layer)
     b -- bias vector: (number of neurons in the current layer, 1)

    Returns:
    Z -- the entry to the activation function
    cache -- a triplet containing "A", "W", and "b", used later for backward propagation
    """
    
    Z = np.dot(W, A) + b
    cache = (A, W, b)
    
    return Z, cache

# In [4]:
def sigmoid(Z):
    """
    Inputs:
     Z -- output of linear forward
     
    Returns:
     A -- g(Z), activation function value
     cache -- Z, used later for backward propagation
    """
    A = 1 / (1 + np.exp(-Z))
    cache = Z
    return A, cache

def relu(Z):
    """
    Inputs:
     Z -- output of linear forward
     
    Returns:
     A -- g(Z), activation function value
     cache -- Z, used later for backward propagation
    """
    A = np.maximum(0, Z)
    cache = Z
    return A, cache

# In [5]:
def linear_activation_forward(A_prev, W, b, activation):
    """
    Implements forward propagation of a layer including the activation function

    Inputs:
    A_prev -- output of the previous layer (or input data):(number of neurons in the previous layer, number of examples)
    W -- weight matrix: (number of neurons in the current layer, number of neurons in the previous layer)
    b -- bias vector: (number of neurons in the current layer, 1)
    activation -- the name of the activation function to use in the layer: "sigmoid" or "relu"
    
    Outputs:
    A -- the output of the layer after applying the activation function
    cache -- a pair containing "linear_cache" and "activation_cache", then used for backpropagation
    """
    
    Z, linear_cache = linear_forward(A_prev, W, b)
    
    if activation == "sigmoid":    
        A, activation_cache = sigmoid(Z)
    elif activation == "relu":
        A, activation_cache = relu(Z)
        
    cache = (linear_cache, activation_cache)

    return A, cache

# In [6]:
def L_model_forward(X, parameters):
    """
    Implement forward propagation of the entire neural network
    
    Inputs:
    X -- data: size array (number of variables, number of examples)
    parameters -- output of initialize_parameters() function
    
    Returns:
    AL -- neural network output
    caches -- list of caches containing all the caches of the linear_activation_forward() function, the caches
                indexed from 0 to L-2 correspond to the relu activation function caches and the indexed cache
                as L-1 corresponds to the cache of the sigmoid activation function
    """

    caches = []
    A = X
    L = len(parameters) // 2

    # deep layers
    for l in range(1, L):
        A_prev = A 
        A, cache = linear_activation_forward(A_prev, parameters["W" + str(l)], parameters["b" + str(l)], "relu")
        caches.append(cache)
    
    # output layer
    AL, cache = linear_activation_forward(A, parameters["W" + str(L)], parameters["b" + str(L)], "sigmoid")
    caches.append(cache)
    
    return AL, caches

# In [7]:
def compute_cost(AL, Y):
    """
    Calculate the cost function

    Inputs:
    AL -- vector containing the output of the network, corresponding to the probabilities predicted by the neural network
            for each example: (1, number of examples)
    Y -- vector with the correct labels for the input data to the network: (1, number of examples)

    Returns:
    cost -- value of the log-loss cost function
    """
    
    m = Y.shape[1]

    cost = -1 * np.mean(np.multiply(np.log(AL), Y) + np.multiply(np.log(1 - AL), (1 - Y)))
    cost = np.squeeze(cost)
    
    return cost

# In [8]:
def linear_backward(dZ, cache):
    """
    Implements the linear part of backpropagation for a single layer

    Inputs:
    dZ -- derivative of the cost function with respect to the linear output of the current layer
    cache -- triple containing the values (A_prev, W, b), coming from the linear_forward function

    Returns:
    dA_prev -- derivative of the cost function with respect to the output of the previous layer (l-1): has the same size as A_prev
    dW -- derivative of the cost function with respect to the weight matrix W of the current layer (l): has the same size as W
    db -- derivative of the cost function with respect to the bias vector b of the current layer (l): has the same size as b
    """
    
    A_prev, W, b = cache
    m = A_prev.shape[1]

    dW = np.dot(dZ, A_prev.T) / m
    db = np.mean(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ)

    return dA_prev, dW, db

# In [9]:
def sigmoid_backward(dA, cache):
    """
    Inputs:
     dA -- derivative of the cost function with respect to the output of the current layer (l)
     cache -- "activation_cache", coming from the linear_activation_forward function
     
    Returns:
     dZ -- derivative of the activation function
    """
    Z = cache
    s = 1 / (1 + np.exp(-Z))
    dZ = dA * s * (1 - s)
    return dZ

def relu_backward(dA, cache):
    """
    Inputs:
     dA -- derivative of the cost function with respect to the output of the current layer (l)
     cache -- "activation_cache", coming from the linear_activation_forward function
     
    Returns:
     dZ -- derivative of the activation function
    """
    Z = cache
    dZ = np.array(dA, copy=True)
    dZ[Z <= 0] = 0
    return dZ

# In [10]:
def linear_activation_backward(dA, cache, activation):
    """
    Implements single layer backpropagation including activation function
    
    Arguments:
    dA -- derivative of the cost function with respect to the output of the current layer (l)
    cache -- pair containing "linear_cache" and "activation_cache", coming from the linear_activation_forward function
    activation -- the name of the activation function used in the current layer (l): "sigmoid" or "relu"
    
    Bring back:
    dA_prev -- derivative of the cost function with respect to the output of the previous layer (l-1): has the same size as A_prev
    dW -- derivative of the cost function with respect to the weight matrix W of the current layer (l): has the same size as W
    db -- derivative of the cost function with respect to the bias vector b of the current layer (l): has the same size as b
    """
    
    linear_cache, activation_cache = cache
    
    if activation == "relu":
        dZ = relu_backward(dA, activation_cache)
    elif activation == "sigmoid":
        dZ = sigmoid_backward(dA, activation_cache)
        
    dA_prev, dW, db = linear_backward(dZ, linear_cache)
    
    return dA_prev, dW, db

# In [11]:
def L_model_backward(AL, Y, caches):
    """
    Implement back propagation of the entire neural network
    
    Inputs:
    AL -- neural network output, comes from the L_model_forward function
    Y -- vector with the correct labels for each example in the data set: (1, number of examples)
    caches -- list of caches containing all the caches of the linear_activation_forward() function, the caches
                indexed from 0 to L-2 correspond to the relu activation function caches and the indexed cache
                as L-1 corresponds to the cache of the sigmoid activation function
    
    Returns:
    grads -- A dictionary with the derivatives of the cost function with respect to each variable:
             grads["dA" + str(l)] = ...
             grads["dW" + str(l)] = ...
             grads["db" + str(l)] = ...
    """
    
    grads = {}
    L = len(caches)
    m = AL.shape[1]
    Y = Y.reshape(AL.shape)
    
    # initialize the back propagation
    dAL = - (np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    
    # last layer gradient
    current_cache = linear_activation_backward(dAL, caches[L-1], "sigmoid")
    grads["dA" + str(L)], grads["dW" + str(L)], grads["db" + str(L)] = current_cache

    # deep layers gradient
    for l in reversed(range(L-1)):
        current_cache = linear_activation_backward(grads["dA" + str(l + 2)], caches[l], "relu")
        dA_prev_temp, dW_temp, db_temp = current_cache
        grads["dA" + str(l + 1)] = dA_prev_temp
        grads["dW" + str(l + 1)] = dW_temp
        grads["db" + str(l + 1)] = db_temp

    return grads

# In [12]:
def update_parameters(parameters, grads, learning_rate):
    """
    Update parameters using gradient descent
    
    Inputs:
    parameters -- dictionary containing the neural network parameters
    grads -- dictionary with the derivatives of the cost function with respect to each parameter,
                corresponds to the output of the L_model_backward function
    
    Returns:
    parameters -- dictionary with updated parameters:
                  parameters["W" + str(l)] = ...
                  parameters["b" + str(l)] = ...
    """
    
    L = len(parameters) // 2

    for l in range(L):
        parameters["W" + str(l+1)] = parameters["W" + str(l+1)] - learning_rate * grads["dW" + str(l+1)]
        parameters["b" + str(l+1)] = parameters["b" + str(l+1)] - learning_rate * grads["db" + str(l+1)]

    return parameters

# In [13]:
def L_layer_model(X, Y, layers_dims, learning_rate, num_iterations, print_cost):
    """
    Implements a neural network of L layers where the first L-1 layers have activation function relu and
    The last layer has sigmoid activation function.
    
    Inputs:
    X -- data: size array (number of variables, number of examples)
    Y -- vector with the correct labels for each example in the data set: (1, number of examples)
    layers_dims -- length list (number of layers + 1) containing the number of variables and the number
                    of neurons in each layer,
    learning_rate -- learning rate to apply the gradient descent method
    num_iterations -- number of steps to apply gradient descent
    print_cost -- if True, writes the value of the cost function every 10 iterations
    
    Returns:
    parameters -- adjusted neural network parameters
    """
    
    # Parameter initialization
    parameters = initialize_parameters(layers_dims)
    
    for i in range(0, num_iterations):
        # Forward prop
        AL, caches = L_model_forward(X, parameters)
        
        # cost function
        cost = compute_cost(AL, Y)
    
        # backrpop
        grads = L_model_backward(AL, Y, caches)
 
        # params update
        parameters = update_parameters(parameters, grads, learning_rate)
                
        # printing the cost every 10 iterations
        if print_cost and i % 10 == 0:
            print ("Cost after iteration %i: %f" %(i, cost))
    
    return parameters

# In [14]:
layers_dims = [100, 20, 5, 1]
parameters = L_layer_model(train_x.T, train_y.reshape(1, -1), layers_dims=layers_dims, learning_rate=0.1, 
                           num_iterations=250, print_cost=True)

# In [16]:
def accuracy(X, y, parameters):
    """
    Calculate the accuracy of the neural network's predictions.
    
    Inputs:
    X -- data: size array (number of variables, number of examples)
    parameters -- parameters of the trained neural network
    
    Returns:
    accuracy -- value between 0 and 1 that represents the accuracy of the neural network
    """
    
    m = X.shape[1]
    p = np.zeros((1,m))
    
    # forward prop
    probs, caches = L_model_forward(X, parameters)

    # ConversiÃ³n de la salida de la red a valores 0 o 1
    for i in range(0, probs.shape[1]):
        if probs[0, i] > 0.5:
            p[0, i] = 1
        else:
            p[0, i] = 0
            
    accuracy = np.sum((p == y)) / m
    
    return accuracy

print("Accuracy: {:.3f}".format(accuracy(test_x.T, test_y.reshape(1, -1), parameters)))
