#!/usr/bin/python3
"""Trains the backbone of scripts/backbone-study: a CNN on the first 10,000
images of Fashion-MNIST's training set, scripted as the frozen feature
extractor (backbone.pt, 28x28 images to 128 floats) and as the whole
network (whole.pt); and writes the other 50,000 images and the test set as
NumPy arrays for `eraser train --dataset npy:...`.

Usage: /usr/bin/python3 scripts/train-backbone.py FASHION_MNIST_DIR OUT_DIR
(TorchScript reads the classes' source, so this is a file, not stdin.)
"""
import gzip, sys
import numpy as np
import torch
from torch import nn

src, out = sys.argv[1], sys.argv[2]

def idx(name, images):
    with gzip.open(f"{src}/{name}.gz") as f:
        data = f.read()
    if images:
        return np.frombuffer(data, np.uint8, offset=16).reshape(-1, 28, 28)
    return np.frombuffer(data, np.uint8, offset=8).astype(np.int64)

x = idx("train-images-idx3-ubyte", True)
y = idx("train-labels-idx1-ubyte", False)
xt = idx("t10k-images-idx3-ubyte", True)
yt = idx("t10k-labels-idx1-ubyte", False)
# eraser ingests images 10,000.. only; the backbone learns from the first
# 10,000.
np.save(f"{out}/rest_x.npy", np.ascontiguousarray(x[10000:]))
np.save(f"{out}/rest_y.npy", y[10000:])
np.save(f"{out}/test_x.npy", xt)
np.save(f"{out}/test_y.npy", yt)


class Features(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.reshape(x.shape[0], 1, 28, 28))


class Whole(nn.Module):
    def __init__(self, features: Features):
        super().__init__()
        self.features = features
        self.head = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


torch.manual_seed(0)
torch.set_num_threads(2)
net = Whole(Features())
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
xb = torch.tensor(x[:10000], dtype=torch.float32) / 255
yb = torch.tensor(y[:10000])
for epoch in range(5):
    order = torch.randperm(10000)
    for i in range(0, 10000, 64):
        j = order[i:i + 64]
        opt.zero_grad()
        nn.functional.cross_entropy(net(xb[j]), yb[j]).backward()
        opt.step()
net.eval()
with torch.no_grad():
    acc = (net(torch.tensor(xt, dtype=torch.float32) / 255).argmax(1) ==
           torch.tensor(yt)).float().mean().item()
print(f"backbone trained on 10,000 images: the whole CNN's test accuracy "
      f"{acc:.4f}")
torch.jit.script(net.features).save(f"{out}/backbone.pt")
torch.jit.script(net).save(f"{out}/whole.pt")
