"""
Exact (float64) step-1 gradients of the openclip_clip training reference, for the elements where
test/clip/train_parity.test.ts's README-rule case fails: an independent NumPy float64 forward of
open_clip's CLIP (conv1 patches, class token, ln_pre, resblocks with nn.MultiheadAttention and
QuickGELU, ln_post, proj; the causal text tower, ln_final, argmax pooling, text_projection) and
ClipLoss, differentiated by central finite differences (h = 1e-4 and 1e-5 agree to ~1e-10).
It reproduces the reference loss (1.4914911) to 1e-8. Run: python3 lab/clip_after3/fd64.py
"""
import json, struct, sys, numpy as np
import os
D=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'shared', 'refs', 'openclip_clip') + '/'
def load(f):
    b=open(f,'rb').read(); n=struct.unpack('<Q',b[:8])[0]; h=json.loads(b[8:8+n]); base=8+n; out={}
    for k,v in h.items():
        if k=='__metadata__': continue
        s,e=v['data_offsets']; dt={'F32':np.float32,'I64':np.int64,'F64':np.float64}[v['dtype']]
        out[k]=np.frombuffer(b[base+s:base+e],dtype=dt).reshape(v['shape'])
    return out
P={k:v.astype(np.float64) for k,v in load(D+'open_clip_model.safetensors').items()}
R=load(D+'train_ref.safetensors')
cfg=json.load(open(D+'open_clip_config.json'))['model_cfg']
x=R['x'].astype(np.float64); ids=R['input_ids']
def ln(x,w,b,eps=1e-5):
    m=x.mean(-1,keepdims=True); v=((x-m)**2).mean(-1,keepdims=True); return (x-m)/np.sqrt(v+eps)*w+b
def block(p,pre,x,heads,mask=None):
    B,N,W=x.shape; hd=W//heads
    h=ln(x,p[pre+'ln_1.weight'],p[pre+'ln_1.bias'])
    qkv=h@p[pre+'attn.in_proj_weight'].T+p[pre+'attn.in_proj_bias']
    q,k,v=qkv[...,:W],qkv[...,W:2*W],qkv[...,2*W:]
    sp=lambda t:t.reshape(B,N,heads,hd).transpose(0,2,1,3)
    q,k,v=sp(q),sp(k),sp(v)
    a=(q/np.sqrt(hd))@k.transpose(0,1,3,2)
    if mask is not None: a=a+mask
    a=a-a.max(-1,keepdims=True); a=np.exp(a); a=a/a.sum(-1,keepdims=True)
    o=(a@v).transpose(0,2,1,3).reshape(B,N,W)
    x=x+o@p[pre+'attn.out_proj.weight'].T+p[pre+'attn.out_proj.bias']
    h=ln(x,p[pre+'ln_2.weight'],p[pre+'ln_2.bias'])
    h=h@p[pre+'mlp.c_fc.weight'].T+p[pre+'mlp.c_fc.bias']
    h=h*(1/(1+np.exp(-1.702*h)))
    return x+h@p[pre+'mlp.c_proj.weight'].T+p[pre+'mlp.c_proj.bias']
def image(p,x):
    w=p['visual.conv1.weight']; Wd,C,Pz,_=w.shape; B,_,H,Wi=x.shape; g=H//Pz
    patches=x.reshape(B,C,g,Pz,g,Pz).transpose(0,2,4,1,3,5).reshape(B,g*g,C*Pz*Pz)
    t=patches@w.reshape(Wd,-1).T
    cls=np.broadcast_to(p['visual.class_embedding'],(B,1,Wd))
    t=np.concatenate([cls,t],1)+p['visual.positional_embedding']
    t=ln(t,p['visual.ln_pre.weight'],p['visual.ln_pre.bias'])
    vc=cfg['vision_cfg']; heads=vc['width']//vc.get('head_width',64)
    for i in range(vc['layers']): t=block(p,f'visual.transformer.resblocks.{i}.',t,heads)
    t=ln(t,p['visual.ln_post.weight'],p['visual.ln_post.bias'])
    return t[:,0]@p['visual.proj']
def text(p,ids):
    tc=cfg['text_cfg']; L=ids.shape[1]
    t=p['token_embedding.weight'][ids]+p['positional_embedding']
    mask=np.triu(np.full((L,L),-np.inf),1)
    for i in range(tc['layers']): t=block(p,f'transformer.resblocks.{i}.',t,tc['heads'],mask)
    t=ln(t,p['ln_final.weight'],p['ln_final.bias'])
    return t[np.arange(len(ids)),ids.argmax(-1)]@p['text_projection']
def loss(p):
    i=image(p,x); t=text(p,ids)
    i=i/np.linalg.norm(i,axis=-1,keepdims=True); t=t/np.linalg.norm(t,axis=-1,keepdims=True)
    l=np.exp(p['logit_scale'])*i@t.T
    def ce(z):
        z=z-z.max(-1,keepdims=True); return -(z.diagonal()-np.log(np.exp(z).sum(-1))).mean()
    return (ce(l)+ce(l.T))/2
if __name__=='__main__':
    L0=loss(P); print('loss64', repr(L0), 'ref', R['losses'][0])
    for name,i in [('visual.conv1.weight',795),('visual.conv1.weight',10597),('visual.conv1.weight',23781),('visual.conv1.weight',25064),('visual.conv1.weight',39717),('visual.conv1.weight',48186),('visual.transformer.resblocks.0.attn.in_proj_weight',18865),('visual.conv1.weight',0),('visual.proj',5)]:
        fd=[]
        for h in (1e-4, 1e-5):
            w=P[name]; v0=w.reshape(-1)[i]
            w2=w.copy(); w2.reshape(-1)[i]=v0+h; P[name]=w2; up=loss(P)
            w2=w.copy(); w2.reshape(-1)[i]=v0-h; P[name]=w2; dn=loss(P)
            P[name]=w; fd.append((up-dn)/(2*h))
        print(name,i,'fd64 h=1e-4 %.6e h=1e-5 %.6e'%tuple(fd),'torch fp32 %.6e'%R['grad.'+name].reshape(-1)[i])
