"""A tiny PyTorch Lightning trainer for test_lightning.py, run by keel's real trainer side: linear
regression on fixed random data (64 rows, 8 batches an epoch) with keel_sdk.lightning.KeelCallback.

params: max_steps, checkpoint_every, report_every, step_delay_ms (slow steps, so a stop lands
mid-run; READY is printed at step 3). Each thing the tests check is printed as `EVENT <json>`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import lightning.pytorch as pl
import torch

import keel_sdk as keel
from torch_common import weights_sha256
from keel_sdk.lightning import KeelCallback, resume_ckpt_path


def event(**fields: object) -> None:
    print("EVENT " + json.dumps(fields), flush=True)


class Regression(pl.LightningModule):
    def __init__(self, step_delay: float) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.step_delay = step_delay

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss)
        if self.global_step == 3:
            print("READY", flush=True)
        time.sleep(self.step_delay)
        return loss

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9)

    def on_train_start(self) -> None:
        event(start_step=self.global_step)



def main() -> None:
    p = keel.params()
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    model = Regression(p.get("step_delay_ms", 0) / 1000)
    callback = KeelCallback(
        report_every_n_steps=p.get("report_every", 5), checkpoint_every_n_steps=p.get("checkpoint_every", 10)
    )
    trainer = pl.Trainer(
        max_steps=p["max_steps"],
        callbacks=[callback],
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    ckpt_path = resume_ckpt_path()
    event(resume=ckpt_path)
    try:
        trainer.fit(model, data, ckpt_path=ckpt_path)
    except SystemExit:  # Lightning's SIGTERMException: KeelCallback saved; exit 0 as it means to
        event(sigterm_exception=True, step=trainer.global_step, reason=keel.stop_reason())
        raise
    event(fit_returned=trainer.global_step, reason=keel.stop_reason(), weights=weights_sha256(model))
    keel.done({"final_step": trainer.global_step, "train_loss": float(trainer.callback_metrics["train_loss"])})


if __name__ == "__main__":
    main()
