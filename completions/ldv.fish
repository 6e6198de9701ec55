# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ldv_global_optspecs
    string join \n profile= vault= config= json q/quiet v/verbose no-progress j/parallel= y/yes lock-wait= stats h/help V/version
end

function __fish_ldv_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ldv_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ldv_using_subcommand
    set -l cmd (__fish_ldv_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ldv -n "__fish_ldv_needs_command" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_needs_command" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_needs_command" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_needs_command" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_needs_command" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_needs_command" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_needs_command" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_needs_command" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_needs_command" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_needs_command" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_needs_command" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ldv -n "__fish_ldv_needs_command" -s V -l version -d 'Print version'
complete -c ldv -n "__fish_ldv_needs_command" -f -a "init" -d 'Create a vault (and optionally save a profile for it)'
complete -c ldv -n "__fish_ldv_needs_command" -f -a "put" -d 'Store files, directories or stdin as new versions'
complete -c ldv -n "__fish_ldv_needs_command" -f -a "get" -d 'Fetch a version to a file, a directory, or stdout (-), verified'
complete -c ldv -n "__fish_ldv_needs_command" -f -a "cat" -d 'Write a version to stdout, verified'
complete -c ldv -n "__fish_ldv_needs_command" -f -a "ls" -d 'List objects and versions'
complete -c ldv -n "__fish_ldv_needs_command" -f -a "rm" -d 'Remove versions (their chunks are reclaimed by gc)'
complete -c ldv -n "__fish_ldv_needs_command" -f -a "stat" -d 'Show the details of one version'
complete -c ldv -n "__fish_ldv_needs_command" -f -a "health" -d 'Check that the backend answers and holds a readable vault'
complete -c ldv -n "__fish_ldv_needs_command" -f -a "verify" -d 'Audit the vault: manifests, chunk presence and sizes, and optionally chunk contents'
complete -c ldv -n "__fish_ldv_needs_command" -f -a "chunk" -d 'Show how a file would be chunked and what a put would upload, without uploading'
complete -c ldv -n "__fish_ldv_needs_command" -f -a "gc" -d 'Delete chunks no version references (after a grace period)'
complete -c ldv -n "__fish_ldv_needs_command" -f -a "unlock" -d 'Remove stale vault locks (or all locks with --all)'
complete -c ldv -n "__fish_ldv_needs_command" -f -a "key" -d 'Manage the keys of an encrypted vault (re-wraps the vault key; data is never re-encrypted)'
complete -c ldv -n "__fish_ldv_needs_command" -f -a "migrate" -d 'Convert a format-1 vault to format 2 (packs and an index), in place and crash-safe'
complete -c ldv -n "__fish_ldv_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c ldv -n "__fish_ldv_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ldv -n "__fish_ldv_using_subcommand init" -l chunking -d 'Default chunking of the new vault [default: profile, else cdc]' -r -f -a "cdc\t'Content-defined (FastCDC; min 32 KiB, avg 128 KiB, max 512 KiB; format 1: 1/4/16 MiB)'
fixed\t'Fixed 64 MiB chunks; files under 128 MiB kept whole'"
complete -c ldv -n "__fish_ldv_using_subcommand init" -l save-profile -d 'Also write a profile with this name for the vault into the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand init" -l format -d 'Vault format: 2 (packs and an index), or 1 for vaults older ldv must read [default: LDV_VAULT_FORMAT, else 2]' -r
complete -c ldv -n "__fish_ldv_using_subcommand init" -l gc-grace -d 'Format 2: how long gc waits between condemning data and deleting it; a put must finish within nine tenths of it [default: 24h]' -r
complete -c ldv -n "__fish_ldv_using_subcommand init" -l pack-size -d 'Format 2: the size packs are filled to before upload, 1 MiB to 128 MiB [default: 16MiB]' -r
complete -c ldv -n "__fish_ldv_using_subcommand init" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand init" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_using_subcommand init" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_using_subcommand init" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_using_subcommand init" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_using_subcommand init" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_using_subcommand init" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_using_subcommand init" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_using_subcommand init" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_using_subcommand init" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_using_subcommand init" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_using_subcommand init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ldv -n "__fish_ldv_using_subcommand put" -l content-type -d 'MIME type to record' -r
complete -c ldv -n "__fish_ldv_using_subcommand put" -l meta -d 'Metadata to record, KEY=VALUE (repeatable)' -r
complete -c ldv -n "__fish_ldv_using_subcommand put" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand put" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_using_subcommand put" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_using_subcommand put" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_using_subcommand put" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_using_subcommand put" -l reread -d 'Read every file of a tree again, instead of reusing the entries of files whose size, times and inode are those of the tree\'s previous version'
complete -c ldv -n "__fish_ldv_using_subcommand put" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_using_subcommand put" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_using_subcommand put" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_using_subcommand put" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_using_subcommand put" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_using_subcommand put" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_using_subcommand put" -s h -l help -d 'Print help'
complete -c ldv -n "__fish_ldv_using_subcommand get" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand get" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_using_subcommand get" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_using_subcommand get" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_using_subcommand get" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_using_subcommand get" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_using_subcommand get" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_using_subcommand get" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_using_subcommand get" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_using_subcommand get" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_using_subcommand get" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_using_subcommand get" -s h -l help -d 'Print help'
complete -c ldv -n "__fish_ldv_using_subcommand cat" -l range -d 'Byte range: A-B (inclusive), A- (to the end) or -N (the last N bytes)' -r
complete -c ldv -n "__fish_ldv_using_subcommand cat" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand cat" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_using_subcommand cat" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_using_subcommand cat" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_using_subcommand cat" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_using_subcommand cat" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_using_subcommand cat" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_using_subcommand cat" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_using_subcommand cat" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_using_subcommand cat" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_using_subcommand cat" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_using_subcommand cat" -s h -l help -d 'Print help'
complete -c ldv -n "__fish_ldv_using_subcommand ls" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand ls" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_using_subcommand ls" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_using_subcommand ls" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_using_subcommand ls" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_using_subcommand ls" -s l -l long -d 'Show size, time, chunks and SHA-256'
complete -c ldv -n "__fish_ldv_using_subcommand ls" -l versions -d 'Show every version, not just the newest'
complete -c ldv -n "__fish_ldv_using_subcommand ls" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_using_subcommand ls" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_using_subcommand ls" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_using_subcommand ls" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_using_subcommand ls" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_using_subcommand ls" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_using_subcommand ls" -s h -l help -d 'Print help'
complete -c ldv -n "__fish_ldv_using_subcommand rm" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand rm" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_using_subcommand rm" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_using_subcommand rm" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_using_subcommand rm" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_using_subcommand rm" -s r -l recursive -d 'Also remove every object below NAME/'
complete -c ldv -n "__fish_ldv_using_subcommand rm" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_using_subcommand rm" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_using_subcommand rm" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_using_subcommand rm" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_using_subcommand rm" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_using_subcommand rm" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_using_subcommand rm" -s h -l help -d 'Print help'
complete -c ldv -n "__fish_ldv_using_subcommand stat" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand stat" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_using_subcommand stat" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_using_subcommand stat" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_using_subcommand stat" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_using_subcommand stat" -l chunks -d 'List every chunk'
complete -c ldv -n "__fish_ldv_using_subcommand stat" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_using_subcommand stat" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_using_subcommand stat" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_using_subcommand stat" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_using_subcommand stat" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_using_subcommand stat" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_using_subcommand stat" -s h -l help -d 'Print help'
complete -c ldv -n "__fish_ldv_using_subcommand health" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand health" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_using_subcommand health" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_using_subcommand health" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_using_subcommand health" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_using_subcommand health" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_using_subcommand health" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_using_subcommand health" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_using_subcommand health" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_using_subcommand health" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_using_subcommand health" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_using_subcommand health" -s h -l help -d 'Print help'
complete -c ldv -n "__fish_ldv_using_subcommand verify" -l read-data-subset -d 'Download and re-hash a subset: n/t (slice n of t; slices 1..t cover every chunk once) or x% (a random sample)' -r
complete -c ldv -n "__fish_ldv_using_subcommand verify" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand verify" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_using_subcommand verify" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_using_subcommand verify" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_using_subcommand verify" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_using_subcommand verify" -l read-data -d 'Download and re-hash every referenced chunk, and check every version\'s whole content against its SHA-256 as `get` would (versions of more than one chunk, and every version of an encrypted vault, are read in order for that)'
complete -c ldv -n "__fish_ldv_using_subcommand verify" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_using_subcommand verify" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_using_subcommand verify" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_using_subcommand verify" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_using_subcommand verify" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_using_subcommand verify" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_using_subcommand verify" -s h -l help -d 'Print help'
complete -c ldv -n "__fish_ldv_using_subcommand chunk" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand chunk" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_using_subcommand chunk" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_using_subcommand chunk" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_using_subcommand chunk" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_using_subcommand chunk" -s l -l long -d 'List every chunk: offset, size, id and whether it exists'
complete -c ldv -n "__fish_ldv_using_subcommand chunk" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_using_subcommand chunk" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_using_subcommand chunk" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_using_subcommand chunk" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_using_subcommand chunk" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_using_subcommand chunk" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_using_subcommand chunk" -s h -l help -d 'Print help'
complete -c ldv -n "__fish_ldv_using_subcommand gc" -l grace -d 'Keep unreferenced chunks younger than this; in a format-2 vault, delete what an earlier gc condemned only this long after [default: the vault\'s grace, 24h unless set at init]' -r
complete -c ldv -n "__fish_ldv_using_subcommand gc" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand gc" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_using_subcommand gc" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_using_subcommand gc" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_using_subcommand gc" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_using_subcommand gc" -l dry-run -d 'Print the plan and stop'
complete -c ldv -n "__fish_ldv_using_subcommand gc" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_using_subcommand gc" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_using_subcommand gc" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_using_subcommand gc" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_using_subcommand gc" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_using_subcommand gc" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_using_subcommand gc" -s h -l help -d 'Print help'
complete -c ldv -n "__fish_ldv_using_subcommand unlock" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand unlock" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_using_subcommand unlock" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_using_subcommand unlock" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_using_subcommand unlock" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_using_subcommand unlock" -l all -d 'Remove every lock, live ones too (only when you know their processes are gone)'
complete -c ldv -n "__fish_ldv_using_subcommand unlock" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_using_subcommand unlock" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_using_subcommand unlock" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_using_subcommand unlock" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_using_subcommand unlock" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_using_subcommand unlock" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_using_subcommand unlock" -s h -l help -d 'Print help'
complete -c ldv -n "__fish_ldv_using_subcommand key; and not __fish_seen_subcommand_from list add passwd remove help" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and not __fish_seen_subcommand_from list add passwd remove help" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and not __fish_seen_subcommand_from list add passwd remove help" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_using_subcommand key; and not __fish_seen_subcommand_from list add passwd remove help" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and not __fish_seen_subcommand_from list add passwd remove help" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and not __fish_seen_subcommand_from list add passwd remove help" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_using_subcommand key; and not __fish_seen_subcommand_from list add passwd remove help" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_using_subcommand key; and not __fish_seen_subcommand_from list add passwd remove help" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_using_subcommand key; and not __fish_seen_subcommand_from list add passwd remove help" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_using_subcommand key; and not __fish_seen_subcommand_from list add passwd remove help" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_using_subcommand key; and not __fish_seen_subcommand_from list add passwd remove help" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_using_subcommand key; and not __fish_seen_subcommand_from list add passwd remove help" -s h -l help -d 'Print help'
complete -c ldv -n "__fish_ldv_using_subcommand key; and not __fish_seen_subcommand_from list add passwd remove help" -f -a "list" -d 'List the key slots of the vault'
complete -c ldv -n "__fish_ldv_using_subcommand key; and not __fish_seen_subcommand_from list add passwd remove help" -f -a "add" -d 'Add a key that opens the vault (asked on the terminal unless a source is given)'
complete -c ldv -n "__fish_ldv_using_subcommand key; and not __fish_seen_subcommand_from list add passwd remove help" -f -a "passwd" -d 'Replace the key that opened the vault with a new one'
complete -c ldv -n "__fish_ldv_using_subcommand key; and not __fish_seen_subcommand_from list add passwd remove help" -f -a "remove" -d 'Remove a key slot (never the last one)'
complete -c ldv -n "__fish_ldv_using_subcommand key; and not __fish_seen_subcommand_from list add passwd remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from list" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from list" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from list" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from list" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from list" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from list" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from list" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from list" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from list" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from add" -l from-env -d 'Read the new passphrase (or, with --raw, a 256-bit key) from this environment variable' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from add" -l kms -d 'Wrap the vault key with this AWS KMS key (id, ARN or alias)' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from add" -l kms-region -d 'With --kms: the key\'s region' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from add" -l kms-endpoint -d 'With --kms: the KMS endpoint URL' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from add" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from add" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from add" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from add" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from add" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from add" -l raw -d 'With --from-env: the variable holds a raw key (64 hex digits or base64 of 32 bytes)'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from add" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from add" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from add" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from add" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from add" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from passwd" -l from-env -d 'Read the new passphrase (or, with --raw, a 256-bit key) from this environment variable' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from passwd" -l kms -d 'Wrap the vault key with this AWS KMS key (id, ARN or alias)' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from passwd" -l kms-region -d 'With --kms: the key\'s region' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from passwd" -l kms-endpoint -d 'With --kms: the KMS endpoint URL' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from passwd" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from passwd" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from passwd" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from passwd" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from passwd" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from passwd" -l raw -d 'With --from-env: the variable holds a raw key (64 hex digits or base64 of 32 bytes)'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from passwd" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from passwd" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from passwd" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from passwd" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from passwd" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from passwd" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from passwd" -s h -l help -d 'Print help'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from remove" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from remove" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from remove" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from remove" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from remove" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from remove" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from remove" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from remove" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from remove" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from remove" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from remove" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the key slots of the vault'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a key that opens the vault (asked on the terminal unless a source is given)'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "passwd" -d 'Replace the key that opened the vault with a new one'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a key slot (never the last one)'
complete -c ldv -n "__fish_ldv_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ldv -n "__fish_ldv_using_subcommand migrate" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand migrate" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_using_subcommand migrate" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_using_subcommand migrate" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_using_subcommand migrate" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_using_subcommand migrate" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_using_subcommand migrate" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_using_subcommand migrate" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_using_subcommand migrate" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_using_subcommand migrate" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_using_subcommand migrate" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_using_subcommand migrate" -s h -l help -d 'Print help'
complete -c ldv -n "__fish_ldv_using_subcommand completions" -l profile -d 'Profile to use from the config file' -r
complete -c ldv -n "__fish_ldv_using_subcommand completions" -l vault -d 'Vault location, overriding the profile: file:///path (or a plain path)' -r
complete -c ldv -n "__fish_ldv_using_subcommand completions" -l config -d 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]' -r -F
complete -c ldv -n "__fish_ldv_using_subcommand completions" -s j -l parallel -d 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]' -r
complete -c ldv -n "__fish_ldv_using_subcommand completions" -l lock-wait -d 'How long to wait for a vault lock held by another process before giving up (exit 8)' -r
complete -c ldv -n "__fish_ldv_using_subcommand completions" -l json -d 'Print one JSON document on stdout instead of text'
complete -c ldv -n "__fish_ldv_using_subcommand completions" -s q -l quiet -d 'Print nothing but errors'
complete -c ldv -n "__fish_ldv_using_subcommand completions" -s v -l verbose -d 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c ldv -n "__fish_ldv_using_subcommand completions" -l no-progress -d 'Never show progress bars'
complete -c ldv -n "__fish_ldv_using_subcommand completions" -s y -l yes -d 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)'
complete -c ldv -n "__fish_ldv_using_subcommand completions" -l stats -d 'Print the store and backend counters on stderr when done'
complete -c ldv -n "__fish_ldv_using_subcommand completions" -s h -l help -d 'Print help'
complete -c ldv -n "__fish_ldv_using_subcommand help; and not __fish_seen_subcommand_from init put get cat ls rm stat health verify chunk gc unlock key migrate completions help" -f -a "init" -d 'Create a vault (and optionally save a profile for it)'
complete -c ldv -n "__fish_ldv_using_subcommand help; and not __fish_seen_subcommand_from init put get cat ls rm stat health verify chunk gc unlock key migrate completions help" -f -a "put" -d 'Store files, directories or stdin as new versions'
complete -c ldv -n "__fish_ldv_using_subcommand help; and not __fish_seen_subcommand_from init put get cat ls rm stat health verify chunk gc unlock key migrate completions help" -f -a "get" -d 'Fetch a version to a file, a directory, or stdout (-), verified'
complete -c ldv -n "__fish_ldv_using_subcommand help; and not __fish_seen_subcommand_from init put get cat ls rm stat health verify chunk gc unlock key migrate completions help" -f -a "cat" -d 'Write a version to stdout, verified'
complete -c ldv -n "__fish_ldv_using_subcommand help; and not __fish_seen_subcommand_from init put get cat ls rm stat health verify chunk gc unlock key migrate completions help" -f -a "ls" -d 'List objects and versions'
complete -c ldv -n "__fish_ldv_using_subcommand help; and not __fish_seen_subcommand_from init put get cat ls rm stat health verify chunk gc unlock key migrate completions help" -f -a "rm" -d 'Remove versions (their chunks are reclaimed by gc)'
complete -c ldv -n "__fish_ldv_using_subcommand help; and not __fish_seen_subcommand_from init put get cat ls rm stat health verify chunk gc unlock key migrate completions help" -f -a "stat" -d 'Show the details of one version'
complete -c ldv -n "__fish_ldv_using_subcommand help; and not __fish_seen_subcommand_from init put get cat ls rm stat health verify chunk gc unlock key migrate completions help" -f -a "health" -d 'Check that the backend answers and holds a readable vault'
complete -c ldv -n "__fish_ldv_using_subcommand help; and not __fish_seen_subcommand_from init put get cat ls rm stat health verify chunk gc unlock key migrate completions help" -f -a "verify" -d 'Audit the vault: manifests, chunk presence and sizes, and optionally chunk contents'
complete -c ldv -n "__fish_ldv_using_subcommand help; and not __fish_seen_subcommand_from init put get cat ls rm stat health verify chunk gc unlock key migrate completions help" -f -a "chunk" -d 'Show how a file would be chunked and what a put would upload, without uploading'
complete -c ldv -n "__fish_ldv_using_subcommand help; and not __fish_seen_subcommand_from init put get cat ls rm stat health verify chunk gc unlock key migrate completions help" -f -a "gc" -d 'Delete chunks no version references (after a grace period)'
complete -c ldv -n "__fish_ldv_using_subcommand help; and not __fish_seen_subcommand_from init put get cat ls rm stat health verify chunk gc unlock key migrate completions help" -f -a "unlock" -d 'Remove stale vault locks (or all locks with --all)'
complete -c ldv -n "__fish_ldv_using_subcommand help; and not __fish_seen_subcommand_from init put get cat ls rm stat health verify chunk gc unlock key migrate completions help" -f -a "key" -d 'Manage the keys of an encrypted vault (re-wraps the vault key; data is never re-encrypted)'
complete -c ldv -n "__fish_ldv_using_subcommand help; and not __fish_seen_subcommand_from init put get cat ls rm stat health verify chunk gc unlock key migrate completions help" -f -a "migrate" -d 'Convert a format-1 vault to format 2 (packs and an index), in place and crash-safe'
complete -c ldv -n "__fish_ldv_using_subcommand help; and not __fish_seen_subcommand_from init put get cat ls rm stat health verify chunk gc unlock key migrate completions help" -f -a "completions" -d 'Print a shell completion script'
complete -c ldv -n "__fish_ldv_using_subcommand help; and not __fish_seen_subcommand_from init put get cat ls rm stat health verify chunk gc unlock key migrate completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ldv -n "__fish_ldv_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "list" -d 'List the key slots of the vault'
complete -c ldv -n "__fish_ldv_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "add" -d 'Add a key that opens the vault (asked on the terminal unless a source is given)'
complete -c ldv -n "__fish_ldv_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "passwd" -d 'Replace the key that opened the vault with a new one'
complete -c ldv -n "__fish_ldv_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "remove" -d 'Remove a key slot (never the last one)'
