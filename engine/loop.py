"""The training loop: two phases, cached paths where the frozen part allows, typed events, cancel, checkpoints, resume.

Phase 1 trains the head on pooled features of K augmented views computed once (no backbone pass per epoch). Phase 2
unfreezes the plan's groups; when everything below the first trainable group is frozen, that part runs once per view
and fine-tuning runs only the groups above it on the cached activations. Every epoch ends with a checkpoint that holds
the model, optimiser, epoch, step, RNG state and the event log's length, so a killed run resumes exactly.
"""
from __future__ import annotations

import dataclasses
import os
import time
import traceback

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from timm.data import Mixup

from engine import augment as aug, distributed
from engine.batches import AugmentedImages, EpochBatches, make_loader
from engine.build import build
from engine.config import TrainConfig
from engine.device import autocast, pick_device, precision_name, to_device
from engine.evaluate import confusion, per_class_accuracy
from engine.events import Cancelled, CancelToken, EpochEnded, PhaseStarted, RunEnded, RunStarted, StepEnded
from engine.losses import make_loss, sample_order
from engine.optim import (Schedule, apply_schedule, build_optimizer, freeze, group_drift, group_grad_norms,
                          set_bn_momentum, set_plan, set_train_mode)
from engine.store import Run
from engine.views import cache_views


class Trainer:
    """Runs one config into one run folder. `fit()` never raises for training errors: it records them."""

    def __init__(self, cfg: TrainConfig, run: Run, cancel: CancelToken | None = None):
        self.cfg, self.cancel = cfg, cancel or CancelToken()
        self.rank, self.world = distributed.init()
        self.run = run if self.rank == 0 or run is None else distributed.ReadOnlyRun(run)
        self.device = pick_device(cfg.device)
        self._images: tuple[AugmentedImages, EpochBatches] | None = None
        self._loader = None
        if self.world > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", torch.cuda.current_device())

    # ---------------------------------------------------------------- setup
    def _setup(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)  # the new head's initialisation and dropout masks follow the run's seed
        b = build(cfg, self.device)
        self.ds, self.spec, self.model, self.weights, self.groups, self.plan, self.split, self.probe = (
            b.ds, b.spec, b.model, b.weights, b.groups, b.plan, b.split, b.probe)
        self.classes = self.ds.classes
        self.initial = {n: p.detach().float().cpu().clone() for n, p in self.model.named_parameters()}
        self.opt = build_optimizer(self.model, self.groups, cfg.weight_decay)
        self.ytr = torch.tensor([it.label for it in self.ds.train])
        self.yva = torch.tensor([it.label for it in self.ds.val])
        self.counts = torch.bincount(self.ytr, minlength=len(self.classes))
        self.loss_fn = make_loss(cfg.balance, self.counts, cfg.label_smoothing)
        self.mix = Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, num_classes=len(self.classes),
                         label_smoothing=cfg.label_smoothing) if cfg.mixup or cfg.cutmix else None

    def _to(self, t: torch.Tensor) -> torch.Tensor:
        return to_device(t, self.device)

    def _views_count(self) -> int:
        """Augmented views to cache (one when there is no augmentation: the views would be identical)."""
        return 1 if self.plan.augment == "none" and not self.cfg.random_erasing else max(1, self.cfg.views)

    # ---------------------------------------------------------------- data
    def _views(self) -> None:
        """Caches features (and boundary activations) of K augmented views of the train set, and of the val set."""
        images, batches = self._train_images()
        self.cached = cache_views(self.model, self.split, self.spec, images, [it.path for it in self.ds.val],
                                  self._views_count(), batches.seed_of, self.device, self._check_cancel)

    def _train_images(self) -> tuple[AugmentedImages, EpochBatches]:
        """The augmented train images and the batch sampler for the full-forward path (made once)."""
        if self._images is None:
            work_key, work_geom = aug.working_geometry(self.spec)
            tf = aug.train_transform(self.spec, self.plan.augment, self.cfg.random_erasing)
            self._images = (AugmentedImages([it.path for it in self.ds.train], work_key, work_geom, tf,
                                            self.spec.in_chans),
                            EpochBatches(self.cfg.batch_size, self.cfg.seed))
        return self._images

    def _full_batch(self, idx: np.ndarray, epoch: int) -> torch.Tensor:
        """One augmented batch built in this thread (the LR finder; the loop uses a DataLoader)."""
        images, batches = self._train_images()
        return torch.stack([images[(int(i), batches.seed_of(int(i), epoch))] for i in idx])

    # ---------------------------------------------------------------- steps
    def _check_cancel(self) -> None:
        if self.cancel.cancelled:
            raise Cancelled()

    def _logits(self, phase: int, idx: np.ndarray, epoch: int) -> torch.Tensor:
        x = None if phase == 1 or self.split is not None else self._full_batch(idx, epoch)
        return self._forward(phase, idx, epoch, x)[0]

    def _forward(self, phase: int, idx: np.ndarray, epoch: int, x: torch.Tensor | None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for a batch, and soft targets when MixUp/CutMix mixed it (full-image path only).

        `x` is the batch's augmented uint8 images on the full-forward path; the cached paths index their tensors.
        """
        view = epoch % self._views_count()
        if phase == 1:
            return self.model.get_classifier()(self._to(self.cached.train_feats[view][idx])), None
        if self.split is not None:
            return self.split.suffix(self._to(self.cached.train_acts[view][idx])), None
        x = self.spec.normalize(self._to(x).contiguous(memory_format=torch.channels_last))
        soft = None
        if self.mix is not None and len(idx) % 2 == 0:
            x, soft = self.mix(x, self.ytr[idx].to(self.device))
        return self.model(x), soft

    @torch.no_grad()
    def _validate(self, phase: int, with_conf: bool = False) -> tuple:
        model = self.model
        model.eval() if self.cfg.eval_mode else model.train()
        outs = []
        with autocast(self.device):
            for b in range(0, len(self.yva), 64):
                if phase == 1:
                    outs.append(model.get_classifier()(self._to(self.cached.val_feats[b:b + 64])).float())
                elif self.split is not None:
                    outs.append(self.split.suffix(self._to(self.cached.val_acts[b:b + 64])).float())
                else:
                    paths = [it.path for it in self.ds.val[b:b + 64]]
                    x = self.spec.normalize(self._to(torch.stack(self.spec.load(paths))))
                    outs.append(model(x).float())
        logits = torch.cat(outs).cpu()
        pred = logits.argmax(1)
        per_class = list(per_class_accuracy(self.yva.numpy(), pred.numpy(), self.classes).values())
        out = float(F.cross_entropy(logits, self.yva)), float((pred == self.yva).float().mean()), per_class, pred
        return (*out, logits.softmax(1).max(1).values) if with_conf else out

    def _epoch(self, phase: int, epoch: int, sched: Schedule, phase_step0: int) -> dict:
        cfg, model = self.cfg, self.model
        frozen = [True] * (len(self.groups) - 1) + [False] if phase == 1 else list(self.plan.frozen)
        set_train_mode(model, self.groups, [True] * len(self.groups) if self.plan.bn_frozen_stats else frozen)
        order = distributed.shard(sample_order(self.ytr, self.counts, cfg.balance == "sampler", cfg.seed + epoch),
                                  self.rank, self.world)
        full = phase == 2 and self.split is None
        if full:
            images, batches = self._train_images()
            if self._loader is None:
                self._loader = make_loader(images, batches, self.device)
            index_batches, pixels = batches.set_epoch(order, epoch), iter(self._loader)
        else:
            index_batches = [b for b in (order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size))
                             if len(b) >= 2]
        t0, total, correct, seen, gnorms = time.perf_counter(), 0.0, 0, 0, []
        for idx in index_batches:
            self._check_cancel()
            idx = np.asarray(idx)
            lrs = apply_schedule(self.opt, sched.factor(self.step - phase_step0))
            with autocast(self.device):
                logits, soft = self._forward(phase, idx, epoch, next(pixels) if full else None)
            logits = logits.float()
            y = self.ytr[idx].to(self.device)
            loss = self.loss_fn(logits, y) if soft is None else torch.sum(-soft * F.log_softmax(logits, -1), -1).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            distributed.average_gradients([p for p in model.parameters() if p.requires_grad], self.world)
            gnorms.append(group_grad_norms(model, self.groups))
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], cfg.grad_clip)
            self.opt.step()
            self.step += 1
            loss_value = loss.item()
            total += loss_value * len(idx)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(idx)
            self.run.append(StepEnded(phase=phase, epoch=epoch, step=self.step, loss=loss_value, lrs=lrs))
        train_s = time.perf_counter() - t0
        val_loss, val_acc, per_class, pred = self._validate(phase)
        return dict(train_loss=total / max(1, seen), train_acc=correct / max(1, seen), val_loss=val_loss,
                    val_acc=val_acc, per_class=per_class, seconds=time.perf_counter() - t0,
                    images_per_s=seen / max(train_s, 1e-9),
                    grad_norm=list(np.mean(gnorms, axis=0)) if gnorms else [0.0] * len(self.groups),
                    drift=group_drift(model, self.groups, self.initial), pred=pred)

    # ---------------------------------------------------------------- run
    def _resume(self) -> int:
        ck = self.run.load_checkpoint("last")
        if ck is None:
            return 0
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.step, self.best = ck["step"], (ck["best_acc"], ck["best_epoch"])
        torch.random.set_rng_state(ck["rng"])
        self.run.truncate_events(ck["events_offset"])
        return ck["epoch"]

    def _checkpoint(self, epoch: int) -> None:
        self.run.save_checkpoint("last", {
            "model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "epoch": epoch, "step": self.step,
            "best_acc": self.best[0], "best_epoch": self.best[1], "rng": torch.random.get_rng_state(),
            "events_offset": self.run.events_offset()})

    def _start_phase(self, phase: int, n_epochs: int, announce: bool) -> Schedule:
        """Freezes, sets BatchNorm momentum and rates for `phase`; returns its schedule. Phase 1 trains the head alone
        at the head rate (cosine); phase 2 follows the plan, with warm-up."""
        cfg, plan = self.cfg, self.plan
        per_epoch = -(-len(self.ytr) // cfg.batch_size)
        steps = n_epochs * per_epoch
        if phase == 1:
            frozen = [True] * (len(self.groups) - 1) + [False]
            lrs = [0.0] * (len(self.groups) - 1) + [plan.head_lr]
            sched = Schedule(steps, floor=cfg.min_lr_ratio)
        else:
            frozen, lrs = list(plan.frozen), list(plan.lrs)
            sched = Schedule(steps, plan.warmup_epochs * per_epoch, floor=cfg.min_lr_ratio)
        freeze(self.model, self.groups, frozen, cfg.train_bn and phase == 2)
        if phase == 2 and cfg.bn_momentum is not None:
            set_bn_momentum(self.model, self.groups, frozen, cfg.bn_momentum)
        set_plan(self.opt, lrs)
        if announce:
            boundary = self.groups[next(i for i, f in enumerate(frozen) if not f)].name
            path = "cached features" if phase == 1 else (
                f"cached activations below {boundary}" if self.split else "full forward") + (
                "; BatchNorm statistics kept from ImageNet" if plan.bn_frozen_stats and phase == 2 else "")
            self.run.append(PhaseStarted(phase=phase, name="train head" if phase == 1 else "fine-tune",
                                         epochs=n_epochs, frozen=frozen, lrs=lrs, path=path))
        return sched

    def _record_epoch(self, phase: int, epoch: int, total: int, m: dict, eta: float) -> None:
        """The epoch's event, status, best checkpoint (when it improved) and last checkpoint."""
        is_best = m["val_acc"] > self.best[0]
        if is_best:
            self.best = (m["val_acc"], epoch)
            self.run.save_checkpoint("best", {"model": self.model.state_dict(), "epoch": epoch})
        self.run.append(EpochEnded(phase=phase, epoch=epoch, total_epochs=total, best=is_best, eta_s=eta,
                                   **{k: v for k, v in m.items() if k != "pred"}))
        self.run.set_status(state="running", epoch=epoch, total_epochs=total, val_acc=m["val_acc"],
                            best_val_acc=self.best[0], eta_s=eta)
        self._checkpoint(epoch)

    def fit(self) -> dict:
        """Trains, or resumes, the run. Returns the final metrics (also written to metrics.json)."""
        t_start = time.time()
        self.run.set_status(state="running", pid=os.getpid(), started=t_start)
        try:
            self._setup()
            self.step, self.best = 0, (-1.0, 0)
            done = self._resume()
            plan, cfg = self.plan, self.cfg
            self.run.write_json("plan.json", {**plan.to_dict(), "classes": self.classes,
                                              "weights": self.weights.to_dict(),
                                              "input_spec": dataclasses.asdict(self.spec)})
            total = plan.head_epochs + plan.finetune_epochs
            self.run.append(RunStarted(config=cfg.to_dict(), groups=list(plan.groups), device=str(self.device),
                                       precision=precision_name(self.device), resumed_from_epoch=done,
                                       world_size=self.world))
            if total == 0:
                raise ValueError("the plan has no epochs to run")
            if done < total and (done < plan.head_epochs or self.split is not None):
                self._views()
            freeze(self.model, self.groups, plan.frozen, cfg.train_bn)
            phases = [(1, plan.head_epochs, 0), (2, plan.finetune_epochs, plan.head_epochs)]
            epoch_times: list[float] = []
            for phase, n_epochs, first in phases:
                if n_epochs == 0 or done >= first + n_epochs:
                    continue
                sched = self._start_phase(phase, n_epochs, announce=done <= first)
                phase_step0 = first * -(-len(self.ytr) // cfg.batch_size)
                for epoch in range(max(done, first) + 1, first + n_epochs + 1):
                    m = self._epoch(phase, epoch, sched, phase_step0)
                    epoch_times.append(m["seconds"])
                    self._record_epoch(phase, epoch, total, m, (total - epoch) * float(np.mean(epoch_times[-3:])))
                    done = epoch
            return self._finish(t_start)
        except Cancelled:
            return self._end("cancelled", t_start)
        except Exception as e:  # noqa: BLE001 - a failed run keeps its metrics and last checkpoint
            if self.rank == 0:
                (self.run.path / "error.txt").write_text(traceback.format_exc())
            return self._end("failed", t_start, f"{type(e).__name__}: {e}")

    def _finish(self, t_start: float) -> dict:
        best = self.run.load_checkpoint("best")
        if best is not None:
            self.model.load_state_dict(best["model"])
        val_loss, val_acc, per_class, pred, conf = self._validate(2 if self.plan.finetune_epochs else 1, True)
        if self.rank == 0:
            save_file({k: v.contiguous() for k, v in self.model.state_dict().items()},
                      str(self.run.path / "model.safetensors"))
            from engine.export import data_stats
            self.run.write_json("data_stats.json", data_stats(self.ds, self.spec))
        metrics = {"status": "finished", "best_val_acc": val_acc, "best_epoch": self.best[1], "val_loss": val_loss,
                   "per_class": dict(zip(self.classes, per_class)),
                   "confusion": confusion(self.yva.numpy(), pred.numpy(), len(self.classes)),
                   "val_paths": [it.path for it in self.ds.val], "val_pred": pred.tolist(), "val_conf": conf.tolist(),
                   "val_labels": self.yva.tolist(), "classes": self.classes,
                   "probe_accuracy": getattr(self.probe, "accuracy", None)}
        return self._end("finished", t_start, metrics=metrics)

    def _end(self, status: str, t_start: float, error: str = "", metrics: dict | None = None) -> dict:
        self._loader = None  # ends the DataLoader's worker processes
        seconds = time.time() - t_start
        metrics = {**(metrics or {}), "status": status, "seconds": seconds, "error": error,
                   "best_val_acc": (metrics or {}).get("best_val_acc", max(getattr(self, "best", (0.0, 0))[0], 0.0)),
                   "best_epoch": getattr(self, "best", (0, 0))[1], "run_id": self.run.id, "run_dir": str(self.run.path)}
        self.run.write_json("metrics.json", metrics)
        self.run.append(RunEnded(status=status, best_val_acc=metrics["best_val_acc"], best_epoch=metrics["best_epoch"],
                                 seconds=seconds, error=error))
        self.run.set_status(state=status, ended=time.time(), best_val_acc=metrics["best_val_acc"])
        return metrics
