# Helper of test/train/run_folder.test.ts: load run folders as a timm user does and print what timm gives.
#
#   python3 run_folder_timm.py <x.safetensors> <out.safetensors> <dir>...
#
# For each <dir>: timm.create_model('local-dir:<dir>', pretrained=True) (without pretrained=True timm
# builds random weights), eval(), forward of the tensor x. The logits go into <out.safetensors> as
# "logits.<i>"; stdout has one JSON line per dir: {"dir", "ok", "error", "warnings"} (timm's log lines
# and Python warnings, so the test can see a "Multiple .safetensors checkpoints" warning).
import json
import logging
import sys
import warnings

import torch
import timm
from safetensors.torch import load_file, save_file

assert timm.__version__ == '1.0.28', f'expected timm 1.0.28, found {timm.__version__} at {timm.__file__}'
x = load_file(sys.argv[1])['x']
out = {}
for i, d in enumerate(sys.argv[3:]):
    records = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.WARNING)
    line = {'dir': d, 'ok': False, 'error': None, 'warnings': []}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            m = timm.create_model(f'local-dir:{d}', pretrained=True).eval()
            with torch.no_grad():
                out[f'logits.{i}'] = m(x).contiguous()
        line['ok'] = True
        line['warnings'] = records + [str(w.message) for w in caught]
    except Exception as e:  # reported to the test, which decides
        line['error'] = f'{type(e).__name__}: {e}'
        line['warnings'] = records
    logging.getLogger().removeHandler(handler)
    print(json.dumps(line), flush=True)
save_file(out, sys.argv[2])
