# A small package set that builds offline, shipped so a fresh instance has
# something to serve without network access. Every package is built by a
# static busybox imported from the host (Debian's busybox-static), which is
# also the shell inside the images.
#
#   docker pull localhost:8080/shell/hello
{ system ? builtins.currentSystem
, busybox ? /usr/bin/busybox
}:
let
  # A store directory holding only `busybox`, so that busybox, started as
  # ".../busybox", knows it is the multi-call binary.
  busyboxDir = builtins.path {
    name = "busybox";
    path = dirOf busybox;
    filter = path: type: baseNameOf path == baseNameOf busybox;
  };
  sh = "${busyboxDir}/busybox";

  # A derivation whose builder script runs under busybox with every applet
  # on PATH.
  mkPackage = { name, script, passthru ? { } }: derivation ({
    inherit name system;
    builder = sh;
    args = [ "sh" "-c" ''
      set -e
      ${sh} mkdir -p $TMPDIR/applets
      for applet in $(${sh} --list); do ${sh} ln -s ${sh} $TMPDIR/applets/$applet; done
      export PATH=$TMPDIR/applets
      ${script}
    '' ];
  } // passthru);

  # A package with one program, a busybox shell script.
  mkScript = name: program: body: mkPackage {
    inherit name;
    script = ''
      mkdir -p $out/bin
      cat > $out/bin/${program} <<'NIXERY_EOF'
      #!${sh} sh
      ${body}
      NIXERY_EOF
      chmod 0555 $out/bin/${program}
    '';
  };

  self = {
    # The busybox multi-call binary with its applets linked in bin/.
    busybox = mkPackage {
      name = "busybox-static";
      script = ''
        mkdir -p $out/bin
        for applet in $(${sh} --list); do ln -s ${sh} $out/bin/$applet; done
      '';
    };

    bashInteractive = mkScript "bash-interactive-demo" "bash" ''exec ${sh} sh "$@"'';
    coreutils = self.busybox;
    moreutils = mkScript "moreutils-demo" "sponge" ''exec ${sh} cat > "$1"'';
    nano = mkScript "nano-demo" "nano" ''exec ${sh} vi "$@"'';

    hello = mkScript "hello-2.12" "hello" ''echo "Hello, world!"'';
    figlet = mkScript "figlet-demo" "figlet" ''echo "== $* =="'';

    cacert = mkPackage {
      name = "nss-cacert-demo";
      script = ''
        mkdir -p $out/etc/ssl/certs
        echo "# demo certificate bundle (empty)" > $out/etc/ssl/certs/ca-bundle.crt
      '';
    };
  };
in
self
