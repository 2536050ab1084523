"""The LightningModule: a VPR model trained with a metric-learning loss, evaluated by Recall@N."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from vpr.config.schema import ModuleConfig
from vpr.eval.evaluate import evaluate_set
from vpr.eval.extract import DescriptorSink, describe_batch
from vpr.eval.metrics import format_recalls
from vpr.inputs.batch_augment import InputTransform
from vpr.inputs.device_decode import EncodedBatch
from vpr.models.model import build_model
from vpr.models.pretrained import get_published_model
from vpr.models.pretrained.build import build_published_architecture
from vpr.training.losses import build_loss, build_miner, compute_loss

logger = logging.getLogger(__name__)

def backbone_training_options(train_blocks: int | None, grad_checkpointing: bool,
                               vit_depth: int | None) -> dict[str, Any]:
    """The `build_backbone` options of train_blocks / grad_checkpointing / vit_depth."""
    options: dict[str, Any] = {"train_blocks": train_blocks}
    if grad_checkpointing:
        options["grad_checkpointing"] = True
    if vit_depth is not None:
        options["depth"] = vit_depth
    return options


class VPRModule(L.LightningModule):
    """Backbone + aggregator trained with a pytorch-metric-learning loss (and miner).

    Validation and test share one evaluation: descriptors for every database image and
    query of the dataloader's ``RetrievalSet`` (by `vpr.eval.extract`'s per-batch step and
    sink, as every other command computes them), then `vpr.eval.evaluate.evaluate_set`;
    Recall@N is logged as ``{stage}/R@N``. Results of the last evaluation of each stage are
    kept in ``self.results[stage]``.
    """

    def __init__(self, config: ModuleConfig | None = None, vpr_version: str = "",
                 **settings: Any) -> None:
        """Builds the model, loss and miner of ``config``.

        Args:
            config: the network, loss, optimiser and evaluation settings.
            vpr_version: the vpr version that wrote the settings (kept in checkpoints).
            **settings: settings by name, replacing those of ``config``
                (``VPRModule(agg_arch="GeM", image_size=(32, 32))``).
        """
        super().__init__()
        config = (config or ModuleConfig()).replace(settings, "VPRModule")
        self.config = config
        # Checkpoints store the settings flat, by name: `load_module` rebuilds from them.
        self.save_hyperparameters({**config.flat(), "vpr_version": vpr_version})
        model, loss = config.model, config.loss
        backbone_options = backbone_training_options(model.train_blocks,
                                                     model.grad_checkpointing, model.vit_depth)
        if model.published_model:
            # A published architecture (its weights are loaded by the caller, or come from
            # this module's checkpoint).
            self.model = build_published_architecture(
                get_published_model(model.published_model),
                tuple(model.image_size) if model.image_size else None, **backbone_options)
        else:
            self.model = build_model(
                backbone=model.backbone,
                agg_arch=model.agg_arch,
                descriptors_dim=model.descriptors_dim,
                image_size=tuple(model.image_size) if model.image_size else (224, 224),
                pretrained=model.pretrained,
                agg_options=dict(model.agg_options),
                backbone_options=backbone_options,
            )
        self.loss_fn = build_loss(loss.loss_name, **dict(loss.loss_options))
        self.miner = build_miner(loss.miner_name, loss.miner_margin, **dict(loss.miner_options))
        # uint8 batches (the fast pipeline) become normalised floats on the device.
        self.input_transform = InputTransform()
        self._augment_seed = 0
        self._compiled: list[Any] = []  # a list: not registered as a sub-module
        self.results: dict[str, dict[str, Any]] = {}
        # Where the next test writes its report and prediction images, and what it adds.
        self.predictions_dir: Path | None = None
        self.report_dir: Path | None = None
        self.report_extra: dict[str, Any] = {}
        self._sink: DescriptorSink | None = None
        # `vpr test --rerank K` sets a `vpr.rerank.evaluation.EvaluationReranker` here.
        self.reranker: Any = None

    def configure_input(self, transform: InputTransform, seed: int = 0,
                        compile_model: bool = False) -> None:
        """Sets how batches become model input, and the speed options of the pipeline.

        Args:
            transform: the on-device transform (augmentation in training, normalisation).
            seed: the run's seed; batch augmentation draws from (seed, step, rank).
            compile_model: run the model through ``torch.compile``; if compiling fails, the
                run goes on eagerly with a warning.
        """
        self.input_transform = transform
        self._augment_seed = seed
        if transform.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self._compiled = [torch.compile(self.model)] if compile_model else []

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        images, *rest = batch
        if isinstance(images, EncodedBatch):  # --decode device: JPEG bytes to uint8 images
            images = images.decode(self.device)
        return (images, *rest)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if not self.training:  # evaluation batches are prepared by `describe_batch`
            return batch
        images, *rest = batch
        generator = torch.Generator().manual_seed(
            self._augment_seed * 1_000_003 + self.global_step * 1_009 + self.global_rank)
        images = self.input_transform(images, augment=True, generator=generator)
        return (images, *rest)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self._compiled:
            try:
                return self._compiled[0](images)
            except Exception as error:  # noqa: BLE001 - any compiler failure: go on eagerly
                logger.warning("torch.compile failed, running eagerly instead: %s", error)
                self._compiled = []
        return self.model(images)

    # ---- training
    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor, Any], batch_idx: int):
        images, labels, skipped = batch
        descriptors = self(images)
        loss, batch_acc = compute_loss(self.loss_fn, self.miner, descriptors.float(), labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss is {loss.item()} at epoch {self.current_epoch}, step {self.global_step}; "
                "the last good checkpoint is kept. Try a lower lr or gradient_clip_val"
            )
        batch_size = images.shape[0]
        self.log("loss", loss, prog_bar=True, batch_size=batch_size)
        self.log("b_acc", batch_acc, prog_bar=True, batch_size=batch_size)
        skipped = int(skipped.sum()) if torch.is_tensor(skipped) else int(skipped)
        self.log("skipped_images", float(skipped), reduce_fx="sum", on_step=False,
                 on_epoch=True, batch_size=batch_size)
        return loss

    def _trained_parameters(self) -> list[torch.nn.Parameter]:
        """The parameters the optimiser updates (not those frozen by ``train_blocks``)."""
        return [parameter for parameter in self.parameters() if parameter.requires_grad]

    def configure_optimizers(self):
        hp = self.config.optim
        name = hp.optimizer.lower()
        if name == "sgd":
            cls, options = torch.optim.SGD, {"momentum": hp.momentum}
        elif name == "adam":
            cls, options = torch.optim.Adam, {}
        elif name == "adamw":
            cls, options = torch.optim.AdamW, {}
        else:
            raise ValueError(f"unknown optimizer {hp.optimizer!r}; valid: sgd, adam, adamw")
        options.update(lr=hp.lr, weight_decay=hp.weight_decay)
        try:  # one fused kernel for all parameters, where the device has one
            optimizer = cls(self._trained_parameters(), fused=True, **options)
        except (RuntimeError, ValueError, TypeError):
            optimizer = cls(self._trained_parameters(), **options)
        scheduler_name = hp.scheduler.lower()
        if scheduler_name == "none":
            return optimizer
        if scheduler_name == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=hp.max_epochs)
        elif scheduler_name == "step":
            scheduler = torch.optim.lr_scheduler.StepLR(
                optimizer, step_size=max(1, hp.max_epochs // 3), gamma=0.1
            )
        else:
            raise ValueError(f"unknown scheduler {hp.scheduler!r}; valid: none, cosine, step")
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    # ---- evaluation (validation and test share it)
    def _eval_dataset(self, stage: str):
        loaders = self.trainer.val_dataloaders if stage == "val" else self.trainer.test_dataloaders
        return loaders.dataset

    def _eval_start(self, stage: str) -> None:
        dataset = self._eval_dataset(stage)
        # One preallocated array, filled in place: memory never holds a list of batches.
        self._sink = DescriptorSink(len(dataset), self.model.descriptors_dim)

    def _gather(self, descriptors: np.ndarray) -> np.ndarray:
        """Under DDP each rank filled its own rows: sum the arrays so every rank has all."""
        if self.trainer.world_size == 1:
            return descriptors
        tensor = torch.from_numpy(descriptors).to(self.device)
        tensor = self.trainer.strategy.reduce(tensor, reduce_op="sum")
        return tensor.cpu().numpy()

    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        # The Trainer has moved the batch and runs this under the run's precision.
        images, indices = batch
        self._sink.add(indices, describe_batch(self, images, self.input_transform, self.device))

    def _eval_end(self, stage: str) -> None:
        dataset = self._eval_dataset(stage)
        descriptors = self._gather(self._sink.finish())
        self._sink = None
        writes = stage == "test" and self.trainer.is_global_zero
        result = evaluate_set(
            dataset, descriptors, self.config.eval,
            report_dir=self.report_dir if writes else None,
            predictions_dir=self.predictions_dir if writes else None,
            extra=self.report_extra if stage == "test" else None,
            reranker=self.reranker if stage == "test" else None,
        )
        recall_values = tuple(self.config.eval.recall_values)
        recalls = {n: result["recalls"][f"R@{n}"] for n in recall_values}
        for n, value in recalls.items():
            # Every rank computed the same value; sync_dist averages identical numbers.
            self.log(f"{stage}/R@{n}", value, prog_bar=n == recall_values[0], sync_dist=True)
        for group, group_report in result.get("recalls_per_group", {}).items():
            first = group_report["recalls"].get(f"R@{recall_values[0]}")
            if first is not None:
                self.log(f"{stage}/{group}/R@{recall_values[0]}", first, sync_dist=True)
        logger.info("Epoch %02d %s %s: %s", self.current_epoch, stage, dataset.root,
                    format_recalls(recalls))
        self.results[stage] = result

    def on_validation_epoch_start(self) -> None:
        self._eval_start("val")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_end("val")

    def on_test_epoch_start(self) -> None:
        self._eval_start("test")

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        self._eval_end("test")
