"""One uncertainty-aware training step divided by one baseline step, measured in one run (goal <= 1.05).

    python benchmarks/bench_train_step.py [--device cpu|cuda] [--repeats 7] [--ranking exact|sampled]

Same 2D U-Net (selectseg's default: MONAI UNet, channels 16-32-64-128, 2 residual units), batch 8 of 256x256,
2 classes, Dice+CE, Adam (learning rate 0 by default, so the share of wrong pixels stays what the regime sets;
Adam's arithmetic is done all the same). A step is forward + loss + backward + optimizer step. The
uncertainty-aware step adds the ranking loss (exact mode by default) with weight 2000 on 1 - max softmax.
Baseline and uncertainty-aware steps are interleaved (the machine is noisy) and the ratio of their medians is
printed.

Two regimes (``--regime``), since the exact loss costs more the more pixels are wrong and the less sure the
correct ones are:
- "untrained": labels from a smooth random field the image does not show; the network at initialisation, so
  about half the pixels are wrong and every pixel is unsure;
- "trained": the image shows the field (plus noise); both networks start from the same weights pre-trained for
  ``--pretrain-steps`` (30) baseline steps, so about 10% of the pixels are wrong and most correct ones are sure.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from selectseg.losses import SelectiveSegmentationLoss, UncertaintyRankingLoss, segmentation_loss
from selectseg.models import ModelSpec, build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--ranking", default="exact", choices=["exact", "sampled"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.0, help="0 keeps the regime fixed; Adam still does all its work")
    parser.add_argument("--regime", default="untrained", choices=["untrained", "trained"])
    parser.add_argument("--pretrain-steps", type=int, default=30)
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    spec = ModelSpec(spatial_dims=2, in_channels=1, num_classes=2)
    field = torch.nn.functional.avg_pool2d(torch.randn(args.batch, 1, args.size, args.size), 31, 1, 15)
    labels = (field[:, 0] > 0).long().to(device)
    if args.regime == "untrained":
        image = torch.randn(args.batch, 1, args.size, args.size, device=device)
    else:
        image = (10 * field + 0.5 * torch.randn(args.batch, 1, args.size, args.size)).to(device)
    seg = segmentation_loss("dice_ce")
    selective = SelectiveSegmentationLoss(seg, UncertaintyRankingLoss(mode=args.ranking), 2000.0)

    torch.manual_seed(0)
    initial = build_model(spec).to(device)
    if args.regime == "trained":
        optimizer = torch.optim.Adam(initial.parameters(), lr=2e-3)
        for _ in range(args.pretrain_steps):
            optimizer.zero_grad(set_to_none=True)
            seg(initial(image), labels).backward()
            optimizer.step()
    models = {}
    for name in ("baseline", "uncertainty_aware"):
        model = build_model(spec).to(device)
        model.load_state_dict(initial.state_dict())
        models[name] = (model, torch.optim.Adam(model.parameters(), lr=args.lr))

    with torch.no_grad():
        wrong_start = float((models["baseline"][0](image).max(1).indices != labels).float().mean())

    def step(name: str) -> float:
        model, optimizer = models[name]
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        logits = model(image)
        loss = seg(logits, labels) if name == "baseline" else selective(logits, labels)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for name in models:  # warm-up
        step(name)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.repeats):
        for name in models:
            times[name].append(step(name))
    with torch.no_grad():
        logits = models["uncertainty_aware"][0](image)
        wrong = float((logits.max(1).indices != labels).float().mean())
    base = statistics.median(times["baseline"])
    aware = statistics.median(times["uncertainty_aware"])
    threads = torch.get_num_threads()
    print(f"machine: {platform.machine()} {platform.processor() or ''} threads={threads} device={device}")
    print(f"batch {args.batch} x {args.size}x{args.size}, ranking={args.ranking}, regime={args.regime}, lr={args.lr}")
    print(f"wrong pixels: {wrong_start:.1%} at the start, {wrong:.1%} at the end")
    print(f"baseline step          median {base * 1e3:8.1f} ms  (min {min(times['baseline']) * 1e3:.1f})")
    print(f"uncertainty-aware step median {aware * 1e3:8.1f} ms  (min {min(times['uncertainty_aware']) * 1e3:.1f})")
    print(f"ratio uncertainty-aware / baseline = {aware / base:.3f}  (goal <= 1.05)")

    # A less noisy view of the same cost: the loss alone (forward + backward on fixed logits), interleaved.
    logits0 = models["baseline"][0](image).detach()
    loss_times: dict[str, list[float]] = {"baseline": [], "uncertainty_aware": []}
    for _ in range(3 * args.repeats):
        for name in loss_times:
            logits = logits0.clone().requires_grad_(True)
            start = time.perf_counter()
            (seg(logits, labels) if name == "baseline" else selective(logits, labels)).backward()
            if device.type == "cuda":
                torch.cuda.synchronize()
            loss_times[name].append(time.perf_counter() - start)
    extra = statistics.median(loss_times["uncertainty_aware"]) - statistics.median(loss_times["baseline"])
    print(
        f"extra loss time (forward + backward) median {extra * 1e3:.1f} ms; 1 + extra / baseline step = "
        f"{1 + extra / base:.3f}"
    )


if __name__ == "__main__":
    main()
