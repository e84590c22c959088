"""Who made an artifact: a signature over every file in it, made and checked with the OpenSSF `model-signing`
library (an elliptic-curve key pair, offline: no Sigstore service is asked).

The manifest's checksums prove an artifact is intact, not who wrote it: anyone can rewrite a manifest (thresholds of
1e-300, a sequence artifact relabelled multi-label) and hash the files again. A signature by a key only its maker
holds closes that: any file added, removed or changed after signing fails verification.

    sign_artifact(bundle, private_key)      # writes bundle/model.sig
    verify_signature(bundle, public_key)    # ArtifactError unless every file is as the key's holder signed it

A key pair: `openssl ecparam -name prime256v1 -genkey -noout -out key.pem && openssl ec -in key.pem -pubout -out
key.pub` (keep key.pem private; ship key.pub with the app)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ArtifactError, InputError, require

SIGNATURE = "model.sig"  # inside the artifact, excluded from what it signs


def check_key(path: Path, kind: str) -> Path:
    """A key file that exists and reads as a PEM key of this kind, checked before any slow work."""
    path = Path(path)
    flag = "--sign" if kind == "private" else "--public-key"
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{flag} {path}: cannot read it ({getattr(exc, 'strerror', None) or exc}).") from None
    wanted = "PRIVATE KEY-----" if kind == "private" else "-----BEGIN PUBLIC KEY-----"
    if wanted not in text:
        raise InputError(
            f"{flag} {path} is not a PEM {kind} key. Make a pair with `openssl ecparam -name prime256v1 -genkey "
            "-noout -out key.pem && openssl ec -in key.pem -pubout -out key.pub`."
        )
    return path


def sign_artifact(bundle: Path, private_key: Path) -> Path:
    """Sign every file of `bundle` (a finished artifact or fleet bundle); the signature lands last, atomically."""
    hashing, signing, _ = _model_signing()
    bundle, key = Path(bundle), check_key(private_key, "private")
    partial = bundle.parent / f".{bundle.name}.{os.getpid()}.sig.partial"  # outside the bundle: it is being hashed
    try:
        config = signing.Config().use_elliptic_key_signer(private_key=key).set_hashing_config(_hashing(hashing))
        config.sign(bundle, partial)
    except (ValueError, TypeError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise InputError(f"Signing {bundle} with {key} failed ({exc}). Use an elliptic-curve private key.") from None
    partial.replace(bundle / SIGNATURE)
    return bundle / SIGNATURE


def verify_signature(bundle: Path, public_key: Path) -> None:
    """Refuse `bundle` unless it carries a signature by `public_key`'s holder over exactly its files."""
    hashing, _, verifying = _model_signing()
    bundle, key = Path(bundle), check_key(public_key, "public")
    if not (bundle / SIGNATURE).is_file():
        raise ArtifactError(
            f"{bundle} is not signed ({SIGNATURE} is missing), and a public key was given: refusing it. Sign it with "
            "`edgebert export ... --sign KEY` (or `edgebert bundle ... --sign KEY`)."
        )
    config = verifying.Config().use_elliptic_key_verifier(public_key=key).set_hashing_config(_hashing(hashing))
    try:
        config.verify(bundle, bundle / SIGNATURE)
    except Exception as exc:  # the library raises ValueError and its own errors; any of them means: not verified
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise ArtifactError(
            f"{bundle} fails its signature check with {key} ({reason}): it was changed after signing, or signed by "
            "another key. Do not use it; re-export and sign it."
        ) from None


def _hashing(hashing):
    # .git* is signed too (the library skips it by default): nothing in the folder goes unchecked
    return hashing.Config().set_ignored_paths(paths=[SIGNATURE], ignore_git_paths=False)


def _model_signing():
    require("model_signing", "sign")
    from model_signing import hashing, signing, verifying

    return hashing, signing, verifying
