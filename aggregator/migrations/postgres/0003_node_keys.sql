-- Vote signing: a node's Ed25519 public key (hex); its votes must then be signed.
ALTER TABLE nodes ADD COLUMN public_key TEXT;
