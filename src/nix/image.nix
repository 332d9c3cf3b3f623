# Nixery's view of a package set: which packages an image name means, and
# for each its output path and the derivation that builds it. Everything
# about the request arrives as one JSON string (`--argstr request …`) and is
# only ever used as data, never as Nix source. The operator's nixpkgs
# configuration arrives as a path (`--argstr nixpkgsConfig …`, empty for
# none).
#
#   request = {
#     source   = { type = "path"; path = "/abs/dir"; };  # also a fetched channel
#                                                       # or git commit
#     system   = "x86_64-linux";
#     packages = [ [ "xorg" "xev" ] … ];  # attribute paths as the name spells them
#     implicit = [ [ "cacert" ] … ];      # added when the package set has them
#   }
#
# `evaluate` is meant for `nix-instantiate --eval --strict --json
# --read-write-mode`: reading drvPath writes the derivations to the store
# (and builds whatever the set imports from a derivation), so the caller
# realises exactly those with nix-store, without a second evaluation.
#
# A requested package that fails to evaluate (a throw such as nixpkgs'
# refusal of an unfree package, an abort, a missing attribute) fails the
# whole evaluation with Nix's own message; tryEval could not catch the last
# two anyway. Right before a requested package is forced, a trace line
# `nixery-evaluating-package ["attr","path"]` goes to stderr, so the caller
# can name the package that failed. Implicit packages that refuse are left
# out instead.
#
# Attributes: `evaluate`, `packageSet` (the imported set, for popcount.nix).
{ request, nixpkgsConfig ? "" }:
let
  req = builtins.fromJSON request;

  source =
    if req.source.type == "path" then req.source.path
    else throw "nixery: unknown source type ${req.source.type}";

  imported = import source;
  args = if builtins.isFunction imported then builtins.functionArgs imported else { };
  takesSystem = builtins.isFunction imported && (args ? system || args == { });
  # Only the operator's configuration, never the evaluating user's
  # ~/.config/nixpkgs or overlays, which nixpkgs reads when it is given no
  # `config` or `overlays`.
  config = if nixpkgsConfig == "" then { } else import nixpkgsConfig;
  pkgs =
    if !builtins.isFunction imported then imported
    else imported (
      (if takesSystem then { inherit (req) system; } else { })
      // (if args ? config then { inherit config; } else { })
      // (if args ? overlays then { overlays = [ ]; } else { })
    );

  upper = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M"
            "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  lower = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m"
            "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  toLower = builtins.replaceStrings upper lower;

  # The attribute of `set` an image name component means: the attribute
  # itself; for a name starting with a digit, the "_"-prefixed attribute
  # (image names cannot start with "_"); otherwise one whose lowercase
  # spelling matches (image names are lowercase: haskellpackages means
  # haskellPackages). null when there is none.
  findAttr = set: name:
    if set ? ${name} then name
    else if builtins.match "[0-9].*" name != null && set ? "_${name}" then "_${name}"
    else
      let matches = builtins.filter (a: toLower a == name) (builtins.attrNames set);
      in if matches == [ ] then null else builtins.head matches;

  # { value; attrPath; } or null when there is no such attribute. With
  # `lenient`, an attribute that throws counts as missing.
  resolveIn = lenient: set: segments:
    let
      attr = if builtins.isAttrs set then findAttr set (builtins.head segments) else null;
      tried = builtins.tryEval set.${attr};
      ok = !lenient || tried.success;
      value = if lenient then tried.value else set.${attr};
      rest = builtins.tail segments;
      inner = resolveIn lenient value rest;
    in
      if attr == null || !ok then null
      else if rest == [ ] then { inherit value; attrPath = [ attr ]; }
      else if inner == null then null
      else inner // { attrPath = [ attr ] ++ inner.attrPath; };

  isDerivation = v: builtins.isAttrs v && (v.type or null) == "derivation";

  found = r: {
    status = "found";
    inherit (r) attrPath;
    out = r.value.outPath; # not "outPath": toJSON would print the set as that string
    drv = r.value.drvPath;
    output = r.value.outputName or "out";
  };

  # The package set is forced before the trace, so that a set that fails to
  # import is not blamed on the first package.
  describe = segments:
    builtins.seq pkgs (builtins.seq (pkgs.config or null) (
      builtins.trace "nixery-evaluating-package ${builtins.toJSON segments}" (
        let r = resolveIn false pkgs segments;
        in if r == null then { status = "missing"; }
        else if !isDerivation r.value then { status = "not-a-package"; inherit (r) attrPath; }
        else found r)));

  describeImplicit = segments:
    let
      r = resolveIn true pkgs segments;
      usable = r != null
        && (builtins.tryEval (isDerivation r.value && builtins.isString r.value.drvPath)).value or false;
    in if usable then found r else null;
in
{
  evaluate = {
    inherit (req) system;
    systemApplied = takesSystem;
    packages = map describe req.packages;
    implicit = builtins.filter (p: p != null) (map describeImplicit req.implicit);
  };

  packageSet = pkgs;
}
