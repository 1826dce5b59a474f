"""The evaluation pipeline: one loop for every way of tagging (`evaluate`), the training budgets
(`profiles`), where checkpoints live (`checkpoints`), and the ways of tagging (`taggers`)."""
