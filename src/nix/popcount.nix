# Every top-level package of a package set, for `nixery popcount`. Takes the
# request image.nix takes (its source and system; packages are ignored).
# Attributes that are not derivations, or refuse to evaluate, are skipped.
{ request, nixpkgsConfig ? "" }:
let
  set = (import ./image.nix { inherit request nixpkgsConfig; }).packageSet;

  entry = name:
    let
      value = builtins.tryEval set.${name};
      isDerivation = value.success
        && (builtins.tryEval (builtins.isAttrs value.value && (value.value.type or null) == "derivation")).value;
      out = if isDerivation then builtins.tryEval value.value.outPath else { success = false; };
    in
      if out.success then { inherit name; out = out.value; drv = value.value; } else null;

  packages = builtins.filter (p: p != null) (map entry (builtins.attrNames set));
in
{
  packages = map (p: { inherit (p) name out; }) packages;
  build = map (p: p.drv) packages;
}
