"""The seed's algorithm on XOR: a sigmoid network, squared error, one example per update."""

import numpy as np

import deltaprop as dp

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
T = np.array([[0], [1], [1], [0]], dtype=float)

net = dp.Network([2, 4, 1], activation="sigmoid", loss="mse", seed=0)
history = net.fit(X, T, optimizer=dp.SGD(lr=2.0), epochs=2000, batch_size=1, verbose=True)

print(f"loss: {history.loss[0]:.4f} -> {history.loss[-1]:.4f}")
for x, o in zip(X, net.predict(X)):
    print(f"XOR{tuple(int(v) for v in x)} = {o[0]:.3f}")
print(f"gradcheck: {dp.gradcheck(net, X, T):.1e}")
