"""Post-training on blend versions: SFT, reward models, DPO/IPO/SimPO/RPO and GRPO (docs/posttraining.md)."""
