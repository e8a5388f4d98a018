"""The int8 deployment peer of `pactq bench run --peer`: what a PyTorch user picks
for integer CPU inference today. The network in fp32 and quantized to int8 by
PyTorch's post-training static quantization (FX graph mode, oneDNN engine,
calibrated), the same method as ../shared/peer/py_resnet20_int8.py, for every
network `pactq bench run` measures against it:

  resnet20         CIFAR-10, the pretrained weights in shared/data/pretrained,
                   calibrated on 1024 test images, accuracy printed
  preact_resnet18  3x224x224, 1000 classes, random weights (speed only),
  alexnet_bn       calibrated on random images (accuracy is meaningless)

The architectures are those of pactq's zoo (src/pactq/models/README.md).

One-shot:  python3 py_int8_peer.py --model resnet20 [--threads N] [--batch 64]
Served:    python3 py_int8_peer.py --model M --serve   then, on stdin, lines
           `round BATCH REPS` -> one JSON line {"fp32_s": median, "int8_s": median}
           per line, so the caller can interleave its own rounds with the peer's
           (ratios of medians measured in one run). `quit` or EOF ends it.
Needs Debian's python3-torch (/usr/bin/python3)."""
import argparse, copy, json, os, struct, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

MEAN = (0.485, 0.456, 0.406)  # the pretrained model's normalisation (shared/data/README)
STD = (0.229, 0.224, 0.225)


def load_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    dtypes = {"F32": np.float32, "I64": np.int64}
    return {k: torch.from_numpy(np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]],
                                              dtypes[v["dtype"]]).reshape(v["shape"]).copy())
            for k, v in header.items()}


# ----------------------------------------------------------------- resnet20
class Shortcut(nn.Module):  # option A: subsample, zero-pad channels
    def __init__(self, pad):
        super().__init__()
        self.pad = pad

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class Block(nn.Module):
    def __init__(self, i, o, s):
        super().__init__()
        self.conv1 = nn.Conv2d(i, o, 3, s, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(o)
        self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(o)
        self.shortcut = Shortcut(o // 4) if (s != 1 or i != o) else nn.Identity()

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet20(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        i, stages = 16, []
        for st, o in enumerate((16, 32, 64)):
            blocks = []
            for k in range(3):
                blocks.append(Block(i, o, 2 if (k == 0 and st > 0) else 1))
                i = o
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(torch.flatten(F.avg_pool2d(x, 8), 1))


# ----------------------------------------------------------------- preact_resnet18
class PreActBlock(nn.Module):
    def __init__(self, i, o, s, preact):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(i) if preact else None
        self.conv1 = nn.Conv2d(i, o, 3, s, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(o)
        self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(i, o, 1, s, bias=False) if (s != 1 or i != o) else None

    def forward(self, x):
        p = F.relu(self.bn1(x)) if self.bn1 is not None else x
        y = self.conv2(F.relu(self.bn2(self.conv1(p))))
        return y + (self.shortcut(p) if self.shortcut is not None else x)


class PreActResNet18(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        i, layers = 64, []
        for st, o in enumerate((64, 128, 256, 512)):
            blocks = []
            for k in range(2):
                s = 2 if (k == 0 and st > 0) else 1
                blocks.append(PreActBlock(i, o, s, preact=not (st == 0 and k == 0)))
                i = o
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.bn_final = nn.BatchNorm2d(512)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = F.relu(self.bn_final(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ----------------------------------------------------------------- alexnet_bn
class AlexNetBN(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        def cbr(i, o, k, s, p):
            return [nn.Conv2d(i, o, k, s, p, bias=False), nn.BatchNorm2d(o), nn.ReLU()]
        self.features = nn.Sequential(
            *cbr(3, 96, 11, 4, 2), nn.MaxPool2d(3, 2),
            *cbr(96, 256, 5, 1, 2), nn.MaxPool2d(3, 2),
            *cbr(256, 384, 3, 1, 1), *cbr(384, 384, 3, 1, 1), *cbr(384, 256, 3, 1, 1),
            nn.MaxPool2d(3, 2))
        self.classifier = nn.Sequential(
            nn.Linear(256 * 6 * 6, 4096, bias=False), nn.BatchNorm1d(4096), nn.ReLU(),
            nn.Linear(4096, 4096, bias=False), nn.BatchNorm1d(4096), nn.ReLU(),
            nn.Linear(4096, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def randomize_bn(model, gen):
    # Random BN statistics in a sane range, so that int8 calibration sees varied ranges.
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.1, 0.1, generator=gen)
            m.running_var.uniform_(0.5, 1.5, generator=gen)


def build(name, data_dir):
    """(fp32 model in eval mode, calibration images, (x, y) test set or None)"""
    gen = torch.Generator().manual_seed(1)
    if name == "resnet20":
        model = ResNet20()
        weights = os.path.join(data_dir, "pretrained", "resnet20-cifar10.safetensors")
        model.load_state_dict(load_safetensors(weights), strict=False)
        model.eval()
        raw = np.fromfile(os.path.join(data_dir, "cifar-10-batches-bin", "test_batch.bin"),
                          np.uint8).reshape(10000, 3073)
        y = torch.from_numpy(raw[:, 0].astype(np.int64))
        x = torch.from_numpy(raw[:, 1:].reshape(10000, 3, 32, 32).astype(np.float32) / 255)
        x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
        return model, x[:1024], (x, y)
    if name == "preact_resnet18":
        model = PreActResNet18()
    elif name == "alexnet_bn":
        model = AlexNetBN()
    else:
        raise SystemExit(f"py_int8_peer: --model {name}: expected resnet20, preact_resnet18 or alexnet_bn")
    randomize_bn(model, gen)
    model.eval()
    # Speed only: a few calibration batches set the int8 ranges; their count does not change speed.
    return model, torch.randn(16, 3, 224, 224, generator=gen), None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--data-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                       "..", "..", "..", "shared", "data"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--engine", default="onednn")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--no-accuracy", action="store_true", help="skip the test-set accuracy (resnet20)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model, calib, test = build(a.model, a.data_dir)
    torch.backends.quantized.engine = a.engine
    shape = tuple(calib.shape[1:])
    q = prepare_fx(copy.deepcopy(model), get_default_qconfig_mapping(a.engine), example_inputs=(calib[:1],))
    with torch.no_grad():
        for i in range(0, calib.shape[0], 128):
            q(calib[i:i + 128])
    q = convert_fx(q)

    info = {"model": a.model, "engine": a.engine, "threads": a.threads, "torch": torch.__version__,
            "input": list(shape)}
    if test is not None and not a.no_accuracy:
        x, y = test
        with torch.no_grad():
            def top1(m):
                return sum(int((m(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum())
                           for i in range(0, x.shape[0], 500)) / x.shape[0] * 100
            info["fp32_top1"], info["int8_top1"] = round(top1(model), 2), round(top1(q), 2)
    print(json.dumps(info), flush=True)

    inputs = {}

    def median_s(m, batch, reps):
        if batch not in inputs:
            inputs[batch] = torch.randn((batch,) + shape, generator=torch.Generator().manual_seed(batch))
        xb = inputs[batch]
        with torch.no_grad():
            m(xb)
            t = []
            for _ in range(reps):
                t0 = time.perf_counter()
                m(xb)
                t.append(time.perf_counter() - t0)
        return sorted(t)[len(t) // 2]

    if not a.serve:
        for batch, reps in ((a.batch, 15), (1, 51)):
            f, qq = median_s(model, batch, reps), median_s(q, batch, reps)
            print(json.dumps({"batch": batch, "fp32_s": f, "int8_s": qq}), flush=True)
        return
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        if words[0] != "round" or len(words) != 3:
            print(json.dumps({"error": f"expected 'round BATCH REPS', got {line.strip()!r}"}), flush=True)
            continue
        batch, reps = int(words[1]), int(words[2])
        f, qq = median_s(model, batch, reps), median_s(q, batch, reps)
        print(json.dumps({"batch": batch, "fp32_s": f, "int8_s": qq}), flush=True)


if __name__ == "__main__":
    main()
