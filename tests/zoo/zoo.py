#!/usr/bin/python3
"""The model zoo: PyTorch classifiers of every kind a user brings, for
Fashion-MNIST (input [N, 28, 28], 10 classes), saved with
torch.jit.script(...).save() as `eraser train --model torchscript:PATH`
takes them.

Usage: /usr/bin/python3 tests/zoo/zoo.py OUT_DIR [NAME ...]
writes OUT_DIR/NAME.pt for each NAME (all when none is given). The zoo test
(tests/zoo/zoo_test.cc) and scripts/measure-zoo use it.

Every module starts from torch.manual_seed(0). The `refused_` ones are
modules eraser must refuse at train, with the cause: they cannot be served
or retrained exactly. `gru_rows` and `attention_rows` are only checked at
train, like the refused ones, and so are `sqrt_pixels`,
`log_softmax_outputs`, `dropout_zero` and `traced_in_eval_mode` (saved
with torch.jit.trace, which `train` accepts with a warning); the test replays
the others but backbone_cnn, which the backbone test uses, and
refused_backbone_centred, refused_backbone_small_batches_only and
refused_backbone_forked, backbones it refuses.
"""
import sys

import torch
import torch.nn.functional as F
from torch import nn


def image(x: torch.Tensor) -> torch.Tensor:
    """[N, 28, 28] (or [N, 784]) as a one-channel image batch."""
    return x.reshape(x.shape[0], 1, 28, 28)


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(),
                                  nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class LayerNormGelu(nn.Module):
    """The MLP of the issue that found the thread-local executor setting:
    LayerNorm, GELU and dropout."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 96),
                                  nn.LayerNorm(96), nn.GELU(), nn.Dropout(0.1),
                                  nn.Linear(96, 48), nn.LayerNorm(48),
                                  nn.GELU(), nn.Linear(48, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class BatchNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 64),
                                  nn.BatchNorm1d(64), nn.ReLU(),
                                  nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ConvBnPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8),
                                      nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(8 * 13 * 13, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(image(x)), 1))


class ResidualGroupNorm(nn.Module):
    """A small residual CNN: GroupNorm, SiLU and functional dropout."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1),
                                  nn.GroupNorm(2, 8), nn.SiLU())
        self.block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1),
                                   nn.GroupNorm(2, 8), nn.SiLU(),
                                   nn.Conv2d(8, 8, 3, padding=1),
                                   nn.GroupNorm(2, 8))
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.head = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(image(x))
        h = F.silu(h + self.block(h))
        h = F.dropout(h, p=0.1, training=self.training)
        return self.head(torch.flatten(self.pool(h), 1))


class Frozen(nn.Module):
    """A frozen first layer (requires_grad=False): only the head trains."""

    def __init__(self):
        super().__init__()
        self.features = nn.Linear(784, 64)
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.features(torch.flatten(x, 1))))


class RunningMean(nn.Module):
    """Buffers that training updates: a running mean of the inputs that
    forward subtracts, and a count of training batches."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(784))
        self.register_buffer("batches", torch.zeros((), dtype=torch.int64))
        self.fc = nn.Linear(784, 64)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        if self.training:
            self.mean.copy_(0.9 * self.mean + 0.1 * x.mean(0).detach())
            self.batches += 1
        return self.head(torch.relu(self.fc(x - self.mean)))


class InputNoise(nn.Module):
    """Gaussian noise on the inputs while training: a random operation other
    than dropout, which draws from Torch's global generator, so eraser
    trains its shards one at a time."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 64)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        if self.training:
            x = x + 0.1 * torch.randn_like(x)
        return self.head(torch.relu(self.fc(x)))


class InferenceDropout(nn.Module):
    """Refused: samples at inference (dropout kept on in eval mode)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.dropout(torch.flatten(x, 1), p=0.5, training=True))


class CountsRequests(nn.Module):
    """Refused: forward changes a buffer when serving."""

    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros(1))
        self.fc = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.fc(torch.flatten(x, 1))


class SqueezesBatchOfOne(nn.Module):
    """Refused: .squeeze() drops the batch dimension of a single request."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(x, 1)).squeeze()


class BatchStatistics(nn.Module):
    """Refused: a row's logits depend on the other rows of its batch."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        return self.fc(x - x.mean(0, keepdim=True))


class BatchNormWithoutRunningStats(nn.Module):
    """Refused: batch statistics in eval mode, which fail on one row."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 64),
                                  nn.BatchNorm1d(64, track_running_stats=False),
                                  nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class NanLogits(nn.Module):
    """Refused: logits that are not finite."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(x, 1)) * float("nan")


class SoftmaxOutputs(nn.Module):
    """Refused: probabilities, not logits (a final softmax, as a classifier
    written for inference often ends): eraser trains with a cross-entropy
    that takes logits."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.fc(torch.flatten(x, 1)), dim=1)


class LogSoftmaxOutputs(nn.Module):
    """Accepted: log-probabilities are logits (a cross-entropy of them is
    the cross-entropy of the scores they came from)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.fc(torch.flatten(x, 1)), dim=1)


class TracedInEvalMode(nn.Module):
    """Accepted with a warning: saved with torch.jit.trace in eval mode (the
    export recipe of many tutorials), its forward keeps eval mode's
    dropout (none) and batch norm (running statistics) in training too."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(784, 32),
                                    nn.BatchNorm1d(32), nn.ReLU(),
                                    nn.Dropout(0.5), nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DropoutZero(nn.Module):
    """Accepted without a warning: scripted, with a dropout of 0 (as
    configurations that turn dropout off have), which computes the same in
    training as in eval mode."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)
        self.drop = nn.Dropout(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(torch.flatten(x, 1)))


class HalfLogits(nn.Module):
    """Refused: float16 logits (training takes a float32 cross-entropy)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(x, 1)).half()


class InplaceBreaksBackward(nn.Module):
    """Refused: an in-place dropout overwrites what ReLU's gradient needs,
    so it cannot be trained (in PyTorch either)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 64),
                                  nn.ReLU(inplace=True),
                                  nn.Dropout(0.2, inplace=True),
                                  nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Branch(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(torch.relu(self.fc(x)), 0.3, self.training)


class ForkDropout(nn.Module):
    """Refused: a branch forked with torch.jit.fork runs on another thread,
    and its dropout draws interleave with the caller's from run to run."""

    def __init__(self):
        super().__init__()
        self.a = Branch()
        self.b = Branch()
        self.out = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = torch.flatten(x, 1)
        forked = torch.jit.fork(self.a, f)
        hb = self.b(f)
        return self.out(torch.cat([torch.jit.wait(forked), hb], 1))


class Overflows(nn.Module):
    """Refused: logits scaled by 1e30 overflow once trained, and the
    training diverges (every parameter NaN: one class for every input)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(x, 1)) * 1e30


class SmallBatchesOnly(nn.Module):
    """Refused: fails on a batch of more than 64 rows, as train's
    evaluation of the test split (1,000 rows at a time) would, after
    training the whole ensemble."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > 64:
            raise RuntimeError("batches of at most 64 rows")
        return self.fc(torch.flatten(x, 1))


class SqrtPixels(nn.Module):
    """Accepted: finite on pixel values in [0, 1] (the checks feed those),
    though not on negative inputs (checked at train, not replayed)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.sqrt(torch.flatten(x, 1)))


class GruRows(nn.Module):
    """Accepted: a GRU reading the image row by row (checked at train, not
    replayed in the test)."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(28, 32, batch_first=True)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(x.reshape(x.shape[0], 28, 28))
        return self.head(h[0])


class AttentionRows(nn.Module):
    """Accepted: self-attention across an image's rows, never across the
    batch (checked at train, not replayed in the test)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(28, 32)
        self.attention = nn.MultiheadAttention(32, 4, dropout=0.1,
                                               batch_first=True)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.reshape(x.shape[0], 28, 28))
        a, _ = self.attention(h, h, h, need_weights=False)
        return self.head((h + a).mean(1))


class CnnEmbedding(nn.Module):
    """A frozen backbone (eraser train --backbone): an image to an embedding
    of 64. Here with its initial weights; scripts/backbone-study trains one
    on images eraser then never ingests."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2), nn.ReLU(),
                                  nn.Conv2d(8, 16, 3, stride=2), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(2), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(image(x))


class CenteredEmbedding(nn.Module):
    """A refused backbone: each embedding centred on its batch's mean, so
    it depends on the samples embedded with it."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.flatten(x, 1))
        return h - h.mean(0, keepdim=True)


class SmallBatchEmbedding(nn.Module):
    """A refused backbone: fails on a batch of more than 300 rows, which
    passes ingest (256 at a time) but not train's evaluation."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > 300:
            raise RuntimeError("batches of at most 300 rows")
        return self.fc(torch.flatten(x, 1))


class ForkedEmbedding(nn.Module):
    """A refused backbone: half of it forked with torch.jit.fork, which runs
    on another thread, outside the settings eraser gives the threads that
    embed."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(784, 8)
        self.b = nn.Linear(784, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = torch.flatten(x, 1)
        forked = torch.jit.fork(self.a, f)
        return torch.cat([torch.jit.wait(forked), self.b(f)], 1)


ZOO = {
    "linear": Linear,
    "mlp": Mlp,
    "layernorm_gelu_dropout": LayerNormGelu,
    "batchnorm1d": BatchNorm,
    "conv_bn_relu_maxpool": ConvBnPool,
    "residual_groupnorm_silu": ResidualGroupNorm,
    "frozen_layer": Frozen,
    "buffer_updated_by_training": RunningMean,
    "input_noise": InputNoise,
    "refused_inference_dropout": InferenceDropout,
    "refused_counts_requests": CountsRequests,
    "refused_squeezes_batch_of_one": SqueezesBatchOfOne,
    "refused_batch_statistics": BatchStatistics,
    "refused_batchnorm_without_running_stats": BatchNormWithoutRunningStats,
    "refused_nan_logits": NanLogits,
    "refused_half_logits": HalfLogits,
    "refused_softmax_outputs": SoftmaxOutputs,
    "refused_inplace_breaks_backward": InplaceBreaksBackward,
    "refused_fork_dropout": ForkDropout,
    "refused_overflows": Overflows,
    "refused_small_batches_only": SmallBatchesOnly,
    "sqrt_pixels": SqrtPixels,
    "log_softmax_outputs": LogSoftmaxOutputs,
    "traced_in_eval_mode": TracedInEvalMode,
    "dropout_zero": DropoutZero,
    "gru_rows": GruRows,
    "attention_rows": AttentionRows,
    "backbone_cnn": CnnEmbedding,
    "refused_backbone_centred": CenteredEmbedding,
    "refused_backbone_small_batches_only": SmallBatchEmbedding,
    "refused_backbone_forked": ForkedEmbedding,
}


def main() -> None:
    out = sys.argv[1]
    for name in sys.argv[2:] or ZOO:
        torch.manual_seed(0)
        module = ZOO[name]()
        if name.startswith("traced_"):
            saved = torch.jit.trace(module.eval(), torch.rand(2, 28, 28))
        else:
            saved = torch.jit.script(module)
        saved.save(f"{out}/{name}.pt")


if __name__ == "__main__":
    main()
