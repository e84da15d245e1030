"""Datasets in webdataset shards: tar files of `{key}.jpg` + `{key}.cls` samples, read by random access.

- `spec.py`: the ways to name shards (brace pattern, list file, folder, index), local or remote;
- `tar.py`: one shard opened with `wids` (webdataset's indexed reader), checked whole;
- `index.py`: the shard index (sample counts, keys, labels, class names), a `wids` descriptor;
- `remote.py`: the local cache of remote shards, kept under a size limit;
- `dataset.py`: `ShardDataset`, an `ImageDataset` over shards, and `shard_dataset(spec, ...)`;
- `writer.py`, `sources.py`: `visionzoo shard`, writing any dataset layout we read as shards.

Needs the `shards` extra (`webdataset`, `wids`): pip install 'visionzoo[shards]'.
"""
