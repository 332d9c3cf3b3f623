# Nixery's view of a package set: which packages an image name means, their
# output paths, and the derivations to build. Everything about the request
# arrives as one JSON string (`--argstr request …`) and is only ever used as
# data, never as Nix source.
#
#   request = {
#     source   = { type = "path"; path = "/abs/dir"; }
#              | { type = "git"; url = "…"; rev = "<40 hex>"; }
#              | { type = "tarball"; url = "…"; };
#     system   = "x86_64-linux";
#     packages = [ [ "xorg" "xev" ] … ];  # attribute paths as the name spells them
#     implicit = [ [ "cacert" ] … ];      # added when the package set has them
#   }
#
# Attributes: `evaluate` (JSON-friendly description), `build` (derivations for
# nix-build), `explain` (forces the requested packages without catching
# errors, so Nix prints why one refuses to evaluate), `source` (the fetched
# source's store path, identifying its content), `packageSet` (the imported
# set, for popcount.nix).
{ request }:
let
  req = builtins.fromJSON request;

  source =
    if req.source.type == "path" then req.source.path
    else if req.source.type == "git" then
      builtins.fetchGit { url = req.source.url; rev = req.source.rev; allRefs = true; }
    else if req.source.type == "tarball" then
      builtins.fetchTarball { url = req.source.url; }
    else throw "nixery: unknown source type ${req.source.type}";

  imported = import source;
  takesSystem = builtins.isFunction imported
    && (builtins.functionArgs imported ? system || builtins.functionArgs imported == { });
  pkgs =
    if !builtins.isFunction imported then imported
    else if takesSystem then imported { inherit (req) system; }
    else imported { };

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

  # { status = "found"; value; attrPath; } | { status = "missing"; } | { status = "error"; }
  resolveIn = set: segments:
    let
      attr = if builtins.isAttrs set then findAttr set (builtins.head segments) else null;
      got = builtins.tryEval set.${attr};
      rest = builtins.tail segments;
    in
      if attr == null then { status = "missing"; }
      else if !got.success then { status = "error"; }
      else if rest == [ ] then { status = "found"; value = got.value; attrPath = [ attr ]; }
      else
        let inner = resolveIn got.value rest;
        in inner // (if inner ? attrPath then { attrPath = [ attr ] ++ inner.attrPath; } else { });

  isDerivation = v:
    let t = builtins.tryEval (builtins.isAttrs v && (v.type or null) == "derivation");
    in t.success && t.value;

  describe = segments:
    let
      r = resolveIn pkgs segments;
      out = builtins.tryEval r.value.outPath;
    in
      if r.status != "found" then { status = r.status; }
      else if !isDerivation r.value then { status = "not-a-package"; attrPath = r.attrPath; }
      else if !out.success then { status = "error"; attrPath = r.attrPath; }
      else {
        status = "found";
        attrPath = r.attrPath;
        out = out.value; # not "outPath": toJSON would print the set as that string
        drv = r.value;
      };

  requested = map describe req.packages;
  implicit = builtins.filter (p: p.status == "found") (map describe req.implicit);
  public = p: builtins.removeAttrs p [ "drv" ];
in
{
  evaluate = {
    inherit (req) system;
    systemApplied = takesSystem;
    packages = map public requested;
    implicit = map public implicit;
  };

  build = map (p: p.drv) (builtins.filter (p: p.status == "found") (requested ++ implicit));

  explain = map
    (segments: (builtins.foldl' (v: s: v.${findAttr v s}) pkgs segments).outPath)
    req.packages;

  source = "${source}";

  packageSet = pkgs;
}
