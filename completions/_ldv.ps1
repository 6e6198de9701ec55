
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'ldv' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'ldv'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'ldv' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Create a vault (and optionally save a profile for it)')
            [CompletionResult]::new('put', 'put', [CompletionResultType]::ParameterValue, 'Store files, directories or stdin as new versions')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Fetch a version to a file, a directory, or stdout (-), verified')
            [CompletionResult]::new('cat', 'cat', [CompletionResultType]::ParameterValue, 'Write a version to stdout, verified')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List objects and versions')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Remove versions (their chunks are reclaimed by gc)')
            [CompletionResult]::new('stat', 'stat', [CompletionResultType]::ParameterValue, 'Show the details of one version')
            [CompletionResult]::new('health', 'health', [CompletionResultType]::ParameterValue, 'Check that the backend answers and holds a readable vault')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Audit the vault: manifests, chunk presence and sizes, and optionally chunk contents')
            [CompletionResult]::new('chunk', 'chunk', [CompletionResultType]::ParameterValue, 'Show how a file would be chunked and what a put would upload, without uploading')
            [CompletionResult]::new('gc', 'gc', [CompletionResultType]::ParameterValue, 'Delete chunks no version references (after a grace period)')
            [CompletionResult]::new('unlock', 'unlock', [CompletionResultType]::ParameterValue, 'Remove stale vault locks (or all locks with --all)')
            [CompletionResult]::new('key', 'key', [CompletionResultType]::ParameterValue, 'Manage the keys of an encrypted vault (re-wraps the vault key; data is never re-encrypted)')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Convert a format-1 vault to format 2 (packs and an index), in place and crash-safe')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ldv;init' {
            [CompletionResult]::new('--chunking', '--chunking', [CompletionResultType]::ParameterName, 'Default chunking of the new vault [default: profile, else cdc]')
            [CompletionResult]::new('--save-profile', '--save-profile', [CompletionResultType]::ParameterName, 'Also write a profile with this name for the vault into the config file')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Vault format: 2 (packs and an index), or 1 for vaults older ldv must read [default: LDV_VAULT_FORMAT, else 2]')
            [CompletionResult]::new('--gc-grace', '--gc-grace', [CompletionResultType]::ParameterName, 'Format 2: how long gc waits between condemning data and deleting it; a put must finish within nine tenths of it [default: 24h]')
            [CompletionResult]::new('--pack-size', '--pack-size', [CompletionResultType]::ParameterName, 'Format 2: the size packs are filled to before upload, 1 MiB to 128 MiB [default: 16MiB]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'ldv;put' {
            [CompletionResult]::new('--content-type', '--content-type', [CompletionResultType]::ParameterName, 'MIME type to record')
            [CompletionResult]::new('--meta', '--meta', [CompletionResultType]::ParameterName, 'Metadata to record, KEY=VALUE (repeatable)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('--reread', '--reread', [CompletionResultType]::ParameterName, 'Read every file of a tree again, instead of reusing the entries of files whose size, times and inode are those of the tree''s previous version')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'ldv;get' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'ldv;cat' {
            [CompletionResult]::new('--range', '--range', [CompletionResultType]::ParameterName, 'Byte range: A-B (inclusive), A- (to the end) or -N (the last N bytes)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'ldv;ls' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Show size, time, chunks and SHA-256')
            [CompletionResult]::new('--long', '--long', [CompletionResultType]::ParameterName, 'Show size, time, chunks and SHA-256')
            [CompletionResult]::new('--versions', '--versions', [CompletionResultType]::ParameterName, 'Show every version, not just the newest')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'ldv;rm' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Also remove every object below NAME/')
            [CompletionResult]::new('--recursive', '--recursive', [CompletionResultType]::ParameterName, 'Also remove every object below NAME/')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'ldv;stat' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('--chunks', '--chunks', [CompletionResultType]::ParameterName, 'List every chunk')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'ldv;health' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'ldv;verify' {
            [CompletionResult]::new('--read-data-subset', '--read-data-subset', [CompletionResultType]::ParameterName, 'Download and re-hash a subset: n/t (slice n of t; slices 1..t cover every chunk once) or x% (a random sample)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('--read-data', '--read-data', [CompletionResultType]::ParameterName, 'Download and re-hash every referenced chunk, and check every version''s whole content against its SHA-256 as `get` would (versions of more than one chunk, and every version of an encrypted vault, are read in order for that)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'ldv;chunk' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'List every chunk: offset, size, id and whether it exists')
            [CompletionResult]::new('--long', '--long', [CompletionResultType]::ParameterName, 'List every chunk: offset, size, id and whether it exists')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'ldv;gc' {
            [CompletionResult]::new('--grace', '--grace', [CompletionResultType]::ParameterName, 'Keep unreferenced chunks younger than this; in a format-2 vault, delete what an earlier gc condemned only this long after [default: the vault''s grace, 24h unless set at init]')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the plan and stop')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'ldv;unlock' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Remove every lock, live ones too (only when you know their processes are gone)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'ldv;key' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the key slots of the vault')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a key that opens the vault (asked on the terminal unless a source is given)')
            [CompletionResult]::new('passwd', 'passwd', [CompletionResultType]::ParameterValue, 'Replace the key that opened the vault with a new one')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a key slot (never the last one)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ldv;key;list' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'ldv;key;add' {
            [CompletionResult]::new('--from-env', '--from-env', [CompletionResultType]::ParameterName, 'Read the new passphrase (or, with --raw, a 256-bit key) from this environment variable')
            [CompletionResult]::new('--kms', '--kms', [CompletionResultType]::ParameterName, 'Wrap the vault key with this AWS KMS key (id, ARN or alias)')
            [CompletionResult]::new('--kms-region', '--kms-region', [CompletionResultType]::ParameterName, 'With --kms: the key''s region')
            [CompletionResult]::new('--kms-endpoint', '--kms-endpoint', [CompletionResultType]::ParameterName, 'With --kms: the KMS endpoint URL')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('--raw', '--raw', [CompletionResultType]::ParameterName, 'With --from-env: the variable holds a raw key (64 hex digits or base64 of 32 bytes)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'ldv;key;passwd' {
            [CompletionResult]::new('--from-env', '--from-env', [CompletionResultType]::ParameterName, 'Read the new passphrase (or, with --raw, a 256-bit key) from this environment variable')
            [CompletionResult]::new('--kms', '--kms', [CompletionResultType]::ParameterName, 'Wrap the vault key with this AWS KMS key (id, ARN or alias)')
            [CompletionResult]::new('--kms-region', '--kms-region', [CompletionResultType]::ParameterName, 'With --kms: the key''s region')
            [CompletionResult]::new('--kms-endpoint', '--kms-endpoint', [CompletionResultType]::ParameterName, 'With --kms: the KMS endpoint URL')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('--raw', '--raw', [CompletionResultType]::ParameterName, 'With --from-env: the variable holds a raw key (64 hex digits or base64 of 32 bytes)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'ldv;key;remove' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'ldv;key;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the key slots of the vault')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a key that opens the vault (asked on the terminal unless a source is given)')
            [CompletionResult]::new('passwd', 'passwd', [CompletionResultType]::ParameterValue, 'Replace the key that opened the vault with a new one')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a key slot (never the last one)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ldv;key;help;list' {
            break
        }
        'ldv;key;help;add' {
            break
        }
        'ldv;key;help;passwd' {
            break
        }
        'ldv;key;help;remove' {
            break
        }
        'ldv;key;help;help' {
            break
        }
        'ldv;migrate' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'ldv;completions' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'Profile to use from the config file')
            [CompletionResult]::new('--vault', '--vault', [CompletionResultType]::ParameterName, 'Vault location, overriding the profile: file:///path (or a plain path)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: $XDG_CONFIG_HOME/ldv/config.toml]')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--parallel', '--parallel', [CompletionResultType]::ParameterName, 'Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB [default: profile, else 8]')
            [CompletionResult]::new('--lock-wait', '--lock-wait', [CompletionResultType]::ParameterName, 'How long to wait for a vault lock held by another process before giving up (exit 8)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides')
            [CompletionResult]::new('--no-progress', '--no-progress', [CompletionResultType]::ParameterName, 'Never show progress bars')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to confirmations (needed by rm and gc when stdin is not a terminal)')
            [CompletionResult]::new('--stats', '--stats', [CompletionResultType]::ParameterName, 'Print the store and backend counters on stderr when done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'ldv;help' {
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Create a vault (and optionally save a profile for it)')
            [CompletionResult]::new('put', 'put', [CompletionResultType]::ParameterValue, 'Store files, directories or stdin as new versions')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Fetch a version to a file, a directory, or stdout (-), verified')
            [CompletionResult]::new('cat', 'cat', [CompletionResultType]::ParameterValue, 'Write a version to stdout, verified')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List objects and versions')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Remove versions (their chunks are reclaimed by gc)')
            [CompletionResult]::new('stat', 'stat', [CompletionResultType]::ParameterValue, 'Show the details of one version')
            [CompletionResult]::new('health', 'health', [CompletionResultType]::ParameterValue, 'Check that the backend answers and holds a readable vault')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Audit the vault: manifests, chunk presence and sizes, and optionally chunk contents')
            [CompletionResult]::new('chunk', 'chunk', [CompletionResultType]::ParameterValue, 'Show how a file would be chunked and what a put would upload, without uploading')
            [CompletionResult]::new('gc', 'gc', [CompletionResultType]::ParameterValue, 'Delete chunks no version references (after a grace period)')
            [CompletionResult]::new('unlock', 'unlock', [CompletionResultType]::ParameterValue, 'Remove stale vault locks (or all locks with --all)')
            [CompletionResult]::new('key', 'key', [CompletionResultType]::ParameterValue, 'Manage the keys of an encrypted vault (re-wraps the vault key; data is never re-encrypted)')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Convert a format-1 vault to format 2 (packs and an index), in place and crash-safe')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ldv;help;init' {
            break
        }
        'ldv;help;put' {
            break
        }
        'ldv;help;get' {
            break
        }
        'ldv;help;cat' {
            break
        }
        'ldv;help;ls' {
            break
        }
        'ldv;help;rm' {
            break
        }
        'ldv;help;stat' {
            break
        }
        'ldv;help;health' {
            break
        }
        'ldv;help;verify' {
            break
        }
        'ldv;help;chunk' {
            break
        }
        'ldv;help;gc' {
            break
        }
        'ldv;help;unlock' {
            break
        }
        'ldv;help;key' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the key slots of the vault')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a key that opens the vault (asked on the terminal unless a source is given)')
            [CompletionResult]::new('passwd', 'passwd', [CompletionResultType]::ParameterValue, 'Replace the key that opened the vault with a new one')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a key slot (never the last one)')
            break
        }
        'ldv;help;key;list' {
            break
        }
        'ldv;help;key;add' {
            break
        }
        'ldv;help;key;passwd' {
            break
        }
        'ldv;help;key;remove' {
            break
        }
        'ldv;help;migrate' {
            break
        }
        'ldv;help;completions' {
            break
        }
        'ldv;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
