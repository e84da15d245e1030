"""Pretrained tag data (TOML), one file per model family. Data only: read by `visionzoo.pretrained_cfg`."""
