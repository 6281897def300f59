#!/usr/bin/python3
"""An example constituent model for eraser, exported as TorchScript.

Copy this file and change the network. eraser trains one copy per shard,
starting from the weights saved here, so keep the usual PyTorch
initialisation (or your own) in __init__. The contract:

  * forward takes a float32 tensor [N, *input_shape] (the dataset's encoded
    features: pixels / 255 for images, standardised and one-hot columns for
    CSV files) and returns logits [N, classes];
  * parameters are float32; buffers (batch norm statistics) are saved with
    every checkpoint;
  * dropout and batch norm are fine: eraser seeds every training stage, so
    retraining after a deletion is bit-identical to training from scratch.

Usage:
  /usr/bin/python3 examples/torchscript/model.py --input-shape 28x28 \\
      --classes 10 --out model.pt
  build/bin/eraser train --data-dir data/fmnist-ts --model torchscript:model.pt

(/usr/bin/python3: Debian's python3-torch, built on the same LibTorch as
eraser.)
"""
import argparse

import torch
from torch import nn


class Net(nn.Module):
    """An MLP with batch norm and dropout over the flattened input."""

    def __init__(self, inputs: int, classes: int, hidden: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(inputs, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input-shape", default="28x28",
                        help="one sample's feature shape, e.g. 28x28 or 19")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the initial weights")
    parser.add_argument("--out", required=True, help="the .pt file to write")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    inputs = 1
    for d in args.input_shape.split("x"):
        inputs *= int(d)
    net = Net(inputs, args.classes, args.hidden, args.dropout)
    torch.jit.script(net).save(args.out)
    print(f"wrote {args.out}: {inputs} inputs, {args.classes} classes")


if __name__ == "__main__":
    main()
