# Load every vitkit-saved checkpoint with timm 1.0.20 exactly as timm's hub loader would: create_model(architecture, **model_args)
import json, struct, sys, os
import numpy as np, torch, timm
def read_st(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8+n]); base = 8+n; out = {}
    for k, v in h.items():
        if k == '__metadata__': continue
        s, e = v['data_offsets']; assert v['dtype'] == 'F32'
        out[k] = torch.from_numpy(np.frombuffer(b[base+s:base+e], dtype='<f4').copy().reshape(v['shape']))
    return out
R = '/work/shared/refs'
for d in sorted(os.listdir('/tmp/saved')):
    cfg = json.load(open(f'/tmp/saved/{d}/config.json'))
    pcfg = dict(cfg.get('pretrained_cfg', {})); pcfg['num_classes'] = cfg['num_classes']
    m = timm.create_model(cfg['architecture'], pretrained=False, pretrained_cfg_overlay=pcfg, **cfg['model_args'])
    sd = read_st(f'/tmp/saved/{d}/model.safetensors')
    missing, unexpected = m.load_state_dict(sd, strict=True), None
    m.eval()
    line = f'{d}: timm.create_model({cfg["architecture"]}, **model_args) + strict load_state_dict OK ({type(m).__name__}, {sum(p.numel() for p in m.parameters())} params)'
    ref = f'{R}/{d}/ref.safetensors' if d != 'timm_vit_tiny' else f'{R}/timm_vit_tiny_ref.safetensors'
    if d == 'hf_vit_small': ref = f'{R}/hf_vit_small/ref.safetensors'
    if os.path.exists(ref):
        r = read_st(ref)
        with torch.no_grad():
            f = m.forward_features(r['pixel_values'])
            lg = m.forward_head(f)
        line += f'; logits max|diff| vs ref {float((lg - r["logits"]).abs().max()):.2e}'
    print(line)
