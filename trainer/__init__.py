"""Trainer: tokenizer, blend data loading, model, optimizers, training loops."""
