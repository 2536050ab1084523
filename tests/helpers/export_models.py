"""A tiny checkpoint that exports: ResNet-18 + ConvAP (32-D) at 64 x 64."""

from __future__ import annotations

import lightning

SIZE = 64  # ResNet-18's 2x2 map at 64 px: ConvAP's 2x2 pooling exports (it must divide)
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def save_tiny_checkpoint(path, seed: int = 0):
    """An untrained ResNet-18 + ConvAP (32-D) checkpoint for 64 x 64 images."""
    from vpr.training.module import VPRModule

    lightning.seed_everything(seed, verbose=False)
    module = VPRModule(pretrained="none", image_size=(SIZE, SIZE), descriptors_dim=32)
    trainer = lightning.Trainer(max_epochs=0, logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path)
    return path
