#!/usr/bin/env python3
"""Independent image reference for the variant tests and benchmarks (Pillow, LittleCMS).

  imgtool.py make OUT --size WxH [--quality Q] [--orientation N] [--icc FILE]
             [--color R,G,B | --halves R,G,B:R,G,B | --photo]
      writes a test image; the format follows OUT's extension (.jpg, .png, .webp, .gif).
      --halves paints the left half in the first colour, the right half in the second;
      --photo paints gradients with detail at every scale (compresses like a photograph).
  imgtool.py info FILE
      prints JSON: format, width, height, mode, and the RGB of the centre, top-centre and
      bottom-centre pixels, as Pillow decodes them (no colour management).
  imgtool.py srgb FILE
      prints JSON: the centre pixel after converting the file's embedded ICC profile to
      sRGB with LittleCMS (perceptual intent, as browsers do for images), and its Lab.
"""
import io
import json
import sys

from PIL import Image, ImageCms


def parse_rgb(text):
    return tuple(int(v) for v in text.split(","))


def make(args):
    out = args[0]
    opts = dict(zip(args[1::2], args[2::2]))
    w, h = (int(v) for v in opts["--size"].split("x"))
    if "--halves" in opts:
        left, right = (parse_rgb(c) for c in opts["--halves"].split(":"))
        img = Image.new("RGB", (w, h), right)
        img.paste(Image.new("RGB", (w // 2, h), left), (0, 0))
    elif "--photo" in opts:
        # Detail at every scale (noise octaves from coarse to fine, as natural images have:
        # a 1/f spectrum) over colour gradients: compresses like a photograph.
        def octaves():
            layer = Image.effect_noise((max(w >> 7, 2), max(h >> 7, 2)), 90).resize((w, h), Image.BICUBIC)
            for k in range(6, -1, -1):
                fine = Image.effect_noise((max(w >> k, 2), max(h >> k, 2)), 60)
                layer = Image.blend(layer, fine.resize((w, h), Image.BICUBIC), 0.3)
            return layer
        base = Image.merge("RGB", (
            Image.linear_gradient("L").resize((w, h)),
            Image.linear_gradient("L").rotate(90).resize((w, h)),
            Image.radial_gradient("L").resize((w, h)),
        ))
        detail = Image.merge("RGB", (octaves(), octaves(), octaves()))
        img = Image.blend(base, detail, 0.6)
    else:
        img = Image.new("RGB", (w, h), parse_rgb(opts.get("--color", "128,128,128")))
    save = {}
    if "--quality" in opts:
        save["quality"] = int(opts["--quality"])
    if "--icc" in opts:
        with open(opts["--icc"], "rb") as f:
            save["icc_profile"] = f.read()
    if "--orientation" in opts:
        exif = Image.Exif()
        exif[0x0112] = int(opts["--orientation"])
        save["exif"] = exif.tobytes()
    img.save(out, **save)


def info(args):
    img = Image.open(args[0])
    fmt = img.format
    w, h = img.size
    mode = img.mode
    rgb = img.convert("RGB")
    print(json.dumps({
        "format": fmt,
        "width": w,
        "height": h,
        "mode": mode,
        "center": rgb.getpixel((w // 2, h // 2)),
        "top": rgb.getpixel((w // 2, h // 8)),
        "bottom": rgb.getpixel((w // 2, h - 1 - h // 8)),
        "icc": bool(img.info.get("icc_profile")),
    }))


def srgb(args):
    img = Image.open(args[0]).convert("RGB")
    icc = Image.open(args[0]).info.get("icc_profile")
    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    dst = ImageCms.createProfile("sRGB")
    out = ImageCms.profileToProfile(img, src, dst, renderingIntent=ImageCms.Intent.PERCEPTUAL)
    w, h = out.size
    print(json.dumps({"center": out.getpixel((w // 2, h // 2))}))


if __name__ == "__main__":
    {"make": make, "info": info, "srgb": srgb}[sys.argv[1]](sys.argv[2:])
