"""safetensors written by hand for the fixture scripts (no safetensors package in Debian):
8-byte little-endian header length, a JSON header padded with spaces to a multiple of 8, raw data."""
import json
import struct

import torch


def write_safetensors(path, tensors, metadata=None):
    """tensors: (name, tensor) pairs in file order; metadata: optional str -> str dict."""
    header, blobs, off = ({"__metadata__": metadata} if metadata else {}), [], 0
    for name, t in tensors:
        t = t.detach().contiguous()
        dtype = {torch.float32: "F32", torch.int32: "I32", torch.float16: "F16", torch.bfloat16: "BF16"}[t.dtype]
        data = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()  # numpy has no bf16
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    hdr = json.dumps(header, separators=(",", ":")).encode()
    hdr += b" " * (-len(hdr) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)))
        f.write(hdr)
        for b in blobs:
            f.write(b)
