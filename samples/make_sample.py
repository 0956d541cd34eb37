import os, sys
from PIL import Image
src, dst = sys.argv[1], sys.argv[2]
tot=0
for root, dirs, files in os.walk(src):
    for f in sorted(files):
        p=os.path.join(root,f); rel=os.path.relpath(p,src); o=os.path.splitext(os.path.join(dst,rel))[0] + '.jpg'
        if not f.lower().endswith(('.jpg','.jpeg','.png')): continue
        os.makedirs(os.path.dirname(o), exist_ok=True)
        Image.open(p).convert('RGB').resize((224,224), Image.Resampling.LANCZOS).save(o, quality=78, subsampling=2, optimize=True)
        tot+=os.path.getsize(o)
print(tot/1e6)
