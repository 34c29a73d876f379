"""A tiny Hugging Face Trainer for test_huggingface.py, run by keel's real trainer side: linear
regression on fixed random data (64 rows, 8 batches an epoch) with keel_sdk.huggingface.KeelCallback.

params: max_steps, save_steps, logging_steps, step_delay_ms (slow steps, so a stop lands mid-run;
READY is printed at step 3), outside (output_dir outside keel's checkpoint folder: a mistake the
callback catches). Each thing the tests check is printed as `EVENT <json>`.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Dict

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

import keel_sdk as keel
from torch_common import weights_sha256
from keel_sdk.huggingface import KeelCallback, resume_checkpoint


def event(**fields: object) -> None:
    print("EVENT " + json.dumps(fields), flush=True)


class Regression(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        out = self.layer(x)
        return {"loss": torch.nn.functional.mse_loss(out, labels), "logits": out}


class Rows(torch.utils.data.Dataset):
    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(64, 4, generator=g)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> Dict[str, torch.Tensor]:
        return {"x": self.x[i], "labels": self.y[i]}


class Slow(TrainerCallback):  # type: ignore[misc]
    def __init__(self, delay: float) -> None:
        self.delay = delay

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        event(start_step=state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == 3:
            print("READY", flush=True)
        time.sleep(self.delay)



def main() -> None:
    p = keel.params()
    output_dir = keel.checkpoint_dir()
    if p.get("outside"):
        output_dir = os.path.join(os.path.dirname(output_dir), "elsewhere")
    args = TrainingArguments(
        output_dir=output_dir,
        max_steps=p["max_steps"],
        save_strategy="steps",
        save_steps=p.get("save_steps", 10),
        logging_steps=p.get("logging_steps", 5),
        per_device_train_batch_size=8,
        learning_rate=0.02,
        seed=0,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    model = Regression()
    trainer = Trainer(
        model=model, args=args, train_dataset=Rows(), callbacks=[KeelCallback(), Slow(p.get("step_delay_ms", 0) / 1000)]
    )
    resume = resume_checkpoint()
    event(resume=resume)
    trainer.train(resume_from_checkpoint=resume)
    event(train_returned=trainer.state.global_step, reason=keel.stop_reason(), weights=weights_sha256(model))
    keel.done({"final_step": trainer.state.global_step})


if __name__ == "__main__":
    main()
