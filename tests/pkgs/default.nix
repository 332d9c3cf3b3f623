# The integration tests' package set: the demo set plus packages that
# exercise sharing, nesting, naming rules and failure modes. It builds
# offline with the host's static busybox. The test harness copies this
# directory and writes salt.nix, so packages that must be built afresh in
# every run (slow ones) get new store paths.
{ system ? builtins.currentSystem
  # Like nixpkgs: given no `config`, the evaluating user's own.
, config ? (let f = builtins.getEnv "HOME" + "/.config/nixpkgs/config.nix";
            in if builtins.pathExists f then import f else { })
}:
let
  demo = import ../../src/nix/demo { inherit system; };
  salt = if builtins.pathExists ./salt.nix then import ./salt.nix else "unsalted";
  # Tests of package sources write stamp.nix to tell revisions apart.
  stampText = if builtins.pathExists ./stamp.nix then import ./stamp.nix else "unstamped";
  sh = "${demo.busybox}/bin/sh";

  mkPackage = name: script: derivation {
    inherit name system;
    builder = sh;
    args = [ "-c" ''
      set -e
      export PATH=${demo.busybox}/bin
      ${script}
    '' ];
  };

  # A program that prints a line and the content of its library.
  mkApp = name: lib: mkPackage name ''
    mkdir -p $out/bin
    printf '#!${sh}\necho "${name} uses $(${demo.busybox}/bin/cat ${lib}/share/greeting)"\n' > $out/bin/${name}
    chmod 0555 $out/bin/${name}
  '';
  # An app whose derivation throws `message` when read, unless `allowed`.
  refusedUnless = allowed: name: lib: message:
    let pkg = mkApp name lib;
    in if allowed then pkg else pkg // { drvPath = throw message; outPath = throw message; };
  # A package whose closure is wider than the layer budget (94): itself and
  # 100 files of `size` bytes (builtins.toFile: nothing to build).
  wideOf = name: size: mkPackage "${name}-1.0" ''
    mkdir -p $out/share
    ${builtins.concatStringsSep "\n" (builtins.genList (n:
      let part = builtins.toFile "${name}-part-${toString n}"
            (builtins.concatStringsSep "" (builtins.genList (_: "x") size));
      in "echo ${part} >> $out/share/parts") 100)}
  '';
  numbered = prefix: count: f: builtins.listToAttrs (builtins.genList (n: {
    name = "${prefix}${toString n}";
    value = f n;
  }) count);
  mkPauses = name: failure: numbered "s" 61 (seconds: numbered "v" 64 (variant:
    mkPackage "${name}-${toString seconds}-${toString variant}-${salt}" ''
      sleep ${toString seconds}
      ${failure}
      mkdir -p $out/bin
      printf '#!${sh}\necho paused ${toString seconds}\n' > $out/bin/pause
      chmod 0555 $out/bin/pause
    ''));
in
demo // rec {
  libgreet = mkPackage "libgreet-1.0" ''
    mkdir -p $out/share
    echo "greetings from libgreet" > $out/share/greeting
  '';
  app-a = mkApp "app-a" libgreet;
  app-b = mkApp "app-b" libgreet;
  app-c = mkApp "app-c" libgreet;
  # Wider than the budget: a's parts are the bigger. Nested, so that
  # popcount (top-level packages) does not count 200 parts.
  wide = {
    a = wideOf "wide-a" 300;
    b = wideOf "wide-b" 100;
  };

  # Two names for one file, as an optimised store or a build can leave them.
  hardlinks = mkPackage "hardlinks-1.0" ''
    mkdir -p $out/share
    echo "linked content" > $out/share/one
    ln $out/share/one $out/share/two
    echo "other content" > $out/share/three
  '';

  # Two programs with the same bytes, as wrappers often are: one layer
  # holds them as a file and a hard link to it.
  twins = mkPackage "twins-1.0" ''
    mkdir -p $out/bin
    printf '#!${sh}\necho "twin $0"\n' > $out/bin/twin-a
    printf '#!${sh}\necho "twin $0"\n' > $out/bin/twin-b
    chmod 0555 $out/bin/twin-a $out/bin/twin-b
  '';

  # File names as real packages have them (localised docs, test suites):
  # UTF-8, Latin-1 and other bytes that are not UTF-8, spaces and control
  # characters, a 255-byte name, a path of over 1000 bytes in a deep tree;
  # hard links, symlinks (dangling, long, to such names), empty files and
  # directories.
  oddnames = mkPackage "oddnames-1.0" ''
    d=$out/share/names
    utf8="ünïcødé-名前"
    latin1=$(printf 'caf\351')
    mkdir -p "$d/empty-dir" "$d/$utf8"
    echo unicode > "$d/$utf8.txt"
    echo latin-1 > "$d/$latin1"
    echo bytes > "$d/$(printf '\200\377\376')"
    echo controls > "$d/$(printf 'with space\tand tab\nand newline')"
    : > "$d/empty"
    long=$(printf '%0251d' 0 | tr 0 n)
    echo long > "$d/$long.txt"
    echo long latin-1 > "$d/$latin1$long"
    deep=$d/deep
    for i in $(seq 1 25); do deep="$deep/$i-$(printf '%040d' 0)-$latin1"; done
    mkdir -p "$deep"
    echo deep > "$deep/leaf"
    printf '#!${sh}\necho run\n' > "$d/$utf8/run"
    chmod 0555 "$d/$utf8/run"
    ln "$d/$utf8.txt" "$d/hard-$latin1"
    ln -s "$utf8.txt" "$d/sym-$utf8"
    ln -s "$latin1" "$d/sym-$latin1"
    ln -s does/not/exist "$d/dangling"
    ln -s "$deep/leaf" "$d/sym-long"
  '';

  # About 48 MiB that does not compress: packing it takes a moment.
  big = mkPackage "big-1.0" ''
    mkdir -p $out/share
    head -c 50331648 /dev/urandom > $out/share/noise
  '';

  # Writes 32 MiB into its build directory first (which Nix makes under
  # TMPDIR: a test puts that on a small disk); new in every test run.
  scratch = mkPackage "scratch-${salt}" ''
    head -c 33554432 /dev/zero > scratch
    mkdir $out
  '';

  # Takes 5 s, with a marker in its builder's command line by which a
  # test finds the builder to kill it as the kernel's OOM killer would;
  # new in every test run.
  victim = mkPackage "victim-${salt}" ''
    : nixery-victim-${salt}
    sleep 5
    mkdir $out
  '';

  # Takes a few seconds to build, and is new in every test run.
  slow = mkPackage "slow-${salt}" ''
    sleep 4
    mkdir -p $out/bin
    printf '#!${sh}\necho slow\n' > $out/bin/slow
    chmod 0555 $out/bin/slow
  '';

  # Slow builds of a chosen length, new in every test run: the image
  # "pause.s12.v3" takes 12 s to build; v0…v63 are otherwise equal builds
  # of that length, for tests that need many distinct images.
  pause = mkPauses "pause" "";
  # The same, failing at the end.
  pausefail = mkPauses "pausefail" ''
    echo "nixery-test: this slow package fails on purpose" >&2
    exit 1
  '';

  # Never finishes within a short NIX_TIMEOUT.
  sleepy = mkPackage "sleepy-${salt}" ''
    sleep 600
    mkdir $out
  '';

  broken = mkPackage "broken-${salt}" ''
    echo "nixery-test: this package is broken on purpose" >&2
    exit 1
  '';

  # Fails at once, saying what Nix says of a builder past its timeout (and
  # nested, so that popcount's scan of the top level does not build it).
  timeouts.lookalike = mkPackage "lookalike-${salt}" ''
    echo "error: fetching https://example.org timed out after 30 seconds" >&2
    exit 1
  '';

  # Fails with markup in its message: the start page must show it as text.
  injects = mkPackage "injects-${salt}" ''
    echo "nixery-test: <script>alert('nix')</script> & <b>bold</b>" >&2
    exit 1
  '';

  refuses = throw "nixery-test: this package refuses to evaluate";
  # Packages for the tests of evaluation (test_nix_eval.py,
  # test_nix_timeouts.py), nested so that popcount's scan of the top level
  # (test_popularity.py) does not see them.
  evaluation = {
    # An evaluation that does not end (about 450 MB, steady, while it runs).
    endless = builtins.foldl' builtins.add 0 (builtins.genList
      (i: builtins.foldl' builtins.add 0 (builtins.genList (j: j) 100000)) 1000000);

    # Errors tryEval cannot catch.
    aborts = mkPackage "aborts" (abort "nixery-test: this package aborts");
    usesmissing = mkPackage "uses-missing" "${demo.nixeryTestNoSuchAttribute}/bin/x";

    # Refused the way nixpkgs' check-meta.nix refuses (when its derivation is
    # read), unless the configuration (or the environment) allows it: in
    # nixpkgs' wording before 2026 and since.
    unfree = refusedUnless
      (config.allowUnfree or false || builtins.getEnv "NIXPKGS_ALLOW_UNFREE" == "1")
      "unfree-1.0" libgreet
      ("Package ‘unfree-1.0’ in ${toString ./.}/default.nix:80 has an unfree "
        + "license (‘unfree’), refusing to evaluate.\n\n"
        + "a) To temporarily allow unfree packages, you can use an environment variable\n"
        + "   for a single invocation of the nix tools.\n\n"
        + "     $ export NIXPKGS_ALLOW_UNFREE=1\n");
    insecure = refusedUnless
      (builtins.elem "insecure-1.0" (config.permittedInsecurePackages or [ ]))
      "insecure-1.0" libgreet
      ("Refusing to evaluate package 'insecure-1.0' in ${toString ./.}/default.nix:"
        + "190 because it is marked as insecure\n"
        + "Known issues:\n - CVE-0000-0000\n\n"
        + "You can install it anyway by allowing this package, using the\n"
        + "following methods:\n");

    # Not available on aarch64-linux (NIXERY_PLATFORMS): refused the way
    # check-meta.nix refuses a package whose meta.platforms leaves it out.
    x86only = refusedUnless (system != "aarch64-linux" || config.allowUnsupportedSystem or false)
      "x86only-1.0" libgreet
      ("Refusing to evaluate package 'x86only-1.0' in ${toString ./.}/default.nix:200 "
        + "because it is not available on the requested hostPlatform:\n"
        + "  hostPlatform.system = \"${system}\"\n"
        + "  package.meta.platforms = [ \"x86_64-linux\" ]\n");

    # Its expression comes from a derivation built during evaluation (import
    # from derivation, as callCabal2nix or `import "${fetchFromGitHub …}"`).
    fromIfd =
      let text = import (mkPackage "ifd-text-${salt}" ''
        echo '"made by a derivation during evaluation"' > $out
      '');
      in mkPackage "from-ifd-${salt}" ''
        mkdir -p $out/share
        echo "${text}" > $out/share/ifd
      '';

    # Builds only where the test seeds a binary cache with it (its marker
    # exists then): anywhere else it must be substituted.
    cached = mkPackage "cached-${salt}" ''
      if [ ! -e /tmp/nixery-seed-${salt} ]; then
        echo "nixery-test: this package must come from the binary cache" >&2
        exit 1
      fi
      mkdir -p $out/share
      head -c 2097152 /dev/urandom > $out/share/data
    '';
  };
  notapackage = "just a string";

  # Images of several platforms (NIXERY_PLATFORMS): whichsystem records
  # the Nix system it was built for; noarm fails to build for aarch64-linux.
  whichsystem = mkPackage "whichsystem-1.0" ''
    mkdir -p $out/share $out/bin
    echo ${system} > $out/share/system
    printf '#!${sh}\necho ${system}\n' > $out/bin/whichsystem
    chmod 0555 $out/bin/whichsystem
  '';
  noarm = if system == "aarch64-linux"
    then mkPackage "noarm-${salt}" ''
      echo "nixery-test: noarm cannot be built for ${system}" >&2
      exit 1
    ''
    else mkApp "noarm-1.0" libgreet;
  # Fails at once for aarch64-linux and takes 12 s elsewhere: one platform's
  # failure is known while the other still builds. New in every test run.
  slownoarm = mkPackage "slownoarm-${salt}" (if system == "aarch64-linux"
    then ''
      echo "nixery-test: slownoarm cannot be built for ${system}" >&2
      exit 1
    ''
    else ''
      sleep 12
      mkdir $out
    '');

  # Naming rules: nested attributes, names starting with a digit, camelCase.
  xorg = { xev = mkApp "xev-1.2" libgreet; };
  _7zip = mkApp "7zip-23" libgreet;
  helloWorld = mkApp "hello-world" libgreet;

  # Prints which revision of the package set it was built from.
  stamp = mkPackage "stamp-${stampText}" ''
    mkdir -p $out/bin
    printf '#!${sh}\necho ${stampText}\n' > $out/bin/stamp
    chmod 0555 $out/bin/stamp
  '';

  iana-etc = mkPackage "iana-etc-20240318" ''
    mkdir -p $out/etc
    echo "http 80/tcp" > $out/etc/services
  '';

  # The closure of a package in the format Nix writes for
  # exportReferencesGraph with structured attributes.
  graphOf = pkg: derivation {
    name = "graph";
    inherit system;
    builder = sh;
    __structuredAttrs = true;
    exportReferencesGraph.graph = [ pkg ];
    # With structured attributes the output path is only in .attrs.json.
    args = [ "-c" ''
      out=$(${demo.busybox}/bin/sed -n 's/.*"outputs":{"out":"\([^"]*\)".*/\1/p' .attrs.json)
      ${demo.busybox}/bin/cp .attrs.json "$out"
    '' ];
  };
}
