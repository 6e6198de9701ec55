//! Shared helpers: a temp environment per test, `ldv` commands that only ever see that
//! environment, deterministic content, hashes, JSON parsing and snapshots of a vault directory.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// The profile every `Env::with_vault` config defines.
pub const PROFILE: &str = "t";

/// Generous per-command limit so that a hung `ldv` fails its test instead of the whole run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The vault formats `ldv init` can create, for tests that run on each.
pub const FORMATS: [u8; 2] = [1, 2];

/// One test's private world: `home/`, `config/` (XDG_CONFIG_HOME), `data/` (XDG_DATA_HOME),
/// `work/` (the working directory of every command and where test files go), `vault/` and
/// `profile.toml`.
pub struct Env {
    dir: TempDir,
    /// `LDV_VAULT_FORMAT` for every command (the format `init` creates); `None`: ldv's default.
    format: Option<u8>,
}

impl Env {
    /// An environment with no config file and no vault.
    pub fn bare() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ldv-cli-")
            .tempdir()
            .expect("create temp dir");
        for sub in ["home", "config", "data", "work"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create temp subdir");
        }
        Self { dir, format: None }
    }

    /// This environment with `LDV_VAULT_FORMAT=<format>` in every command, so the vaults its
    /// commands create are of that format (1: one object per chunk under `chunks/`; 2: packs
    /// found through index segments). Before any `init`.
    pub fn in_format(mut self, format: u8) -> Self {
        assert!(FORMATS.contains(&format), "no vault format {format}");
        self.format = Some(format);
        self
    }

    /// A bare environment whose commands create vaults of `format`.
    pub fn bare_in(format: u8) -> Self {
        Self::bare().in_format(format)
    }

    /// An environment whose `profile.toml` has profile `t`: a local vault at `vault/` with small
    /// content-defined chunks (16/64/256 KiB) so that a few MiB span many chunks; the vault is
    /// initialised through `ldv init`.
    pub fn with_vault() -> Self {
        Self::bare().init_profile_vault()
    }

    /// [`Env::with_vault`] with a vault of `format` (1 or 2).
    pub fn with_vault_in(format: u8) -> Self {
        let env = Self::bare_in(format).init_profile_vault();
        assert_eq!(env.vault_format(), u64::from(format));
        env
    }

    /// [`Env::with_vault`] with a format-1 vault.
    pub fn with_vault_format1() -> Self {
        Self::with_vault_in(1)
    }

    fn init_profile_vault(self) -> Self {
        std::fs::write(self.config_path(), self.profile_toml("")).expect("write profile.toml");
        self.ldv().arg("init").assert().success();
        assert!(self.vault_dir().join("ldv-vault.json").is_file());
        self
    }

    /// An environment with an explicit vault (`--vault file:///.../vault`) made by `ldv init`,
    /// using the vault's default chunking.
    pub fn with_explicit_vault() -> Self {
        let env = Self::bare();
        env.ldv_vault().arg("init").assert().success();
        assert!(env.vault_dir().join("ldv-vault.json").is_file());
        env
    }

    /// The text of a config file defining profile `t` on this env's vault, plus `extra` lines
    /// inside the profile table.
    pub fn profile_toml(&self, extra: &str) -> String {
        format!(
            "[profiles.{PROFILE}]\nbackend = {{ type = \"local\", path = {} }}\n\
             chunking = {{ mode = \"cdc\", min = \"16KiB\", avg = \"64KiB\", max = \"256KiB\" }}\n{extra}",
            toml_string(&self.vault_dir())
        )
    }

    /// The temp root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A path under `work/`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join("work").join(rel)
    }

    /// The vault directory.
    pub fn vault_dir(&self) -> PathBuf {
        self.root().join("vault")
    }

    /// `file:///.../vault`.
    pub fn vault_url(&self) -> String {
        format!("file://{}", self.vault_dir().display())
    }

    /// The profile file `Env::with_vault` writes.
    pub fn config_path(&self) -> PathBuf {
        self.root().join("profile.toml")
    }

    /// `$XDG_CONFIG_HOME`.
    pub fn xdg_config(&self) -> PathBuf {
        self.root().join("config")
    }

    /// `$XDG_DATA_HOME`.
    pub fn xdg_data(&self) -> PathBuf {
        self.root().join("data")
    }

    /// A plain `std::process::Command` for `ldv` in this environment: HOME and the XDG dirs point
    /// into the temp dir, every `LDV_*` variable (and `RUST_LOG`) is removed, the working
    /// directory is `work/`. For tests that need to spawn and signal the process.
    pub fn std_command(&self) -> std::process::Command {
        // `Command::cargo_bin("ldv")` resolves the same executable; a std command can be spawned.
        // The load drill (scripts/stress/load.sh) runs every command through a wrapper that
        // records how long it took to exit after its last output.
        let ldv = assert_cmd::cargo::cargo_bin("ldv");
        let mut cmd = match std::env::var_os("LDV_TEST_WRAPPER") {
            Some(wrapper) => {
                let mut cmd = std::process::Command::new(wrapper);
                cmd.arg(ldv);
                cmd
            }
            None => std::process::Command::new(ldv),
        };
        cmd.current_dir(self.root().join("work"))
            .env("HOME", self.root().join("home"))
            .env("XDG_CONFIG_HOME", self.xdg_config())
            .env("XDG_DATA_HOME", self.xdg_data())
            .env_remove("XDG_CACHE_HOME")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("LDV_") {
                cmd.env_remove(key);
            }
        }
        if let Some(format) = self.format {
            cmd.env("LDV_VAULT_FORMAT", format.to_string());
        }
        cmd
    }

    /// `ldv --config profile.toml --profile t` as a std command, to spawn and signal.
    pub fn std_ldv(&self) -> std::process::Command {
        let mut cmd = self.std_command();
        cmd.arg("--config")
            .arg(self.config_path())
            .args(["--profile", PROFILE]);
        cmd
    }

    /// `ldv` with no config or vault flags: whatever the environment resolves to.
    pub fn bare_ldv(&self) -> Command {
        // Built from `std_command` (the `cargo_bin("ldv")` executable) so both kinds share one
        // definition of the environment.
        let mut cmd = Command::from_std(self.std_command());
        cmd.timeout(COMMAND_TIMEOUT);
        cmd
    }

    /// `ldv --config profile.toml --profile t`.
    pub fn ldv(&self) -> Command {
        let mut cmd = self.bare_ldv();
        cmd.arg("--config")
            .arg(self.config_path())
            .args(["--profile", PROFILE]);
        cmd
    }

    /// `ldv --vault file:///.../vault`.
    pub fn ldv_vault(&self) -> Command {
        let mut cmd = self.bare_ldv();
        cmd.arg("--vault").arg(self.vault_url());
        cmd
    }

    /// Writes the config file, private (mode 0600) as a file holding secrets must be, or ldv
    /// warns on every run.
    pub fn write_config(&self, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.config_path();
        std::fs::write(&path, text).expect("write profile.toml");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// Writes `data` to `work/<rel>` (creating parent dirs) and returns the path.
    pub fn write(&self, rel: &str, data: &[u8]) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent dirs");
        }
        std::fs::write(&path, data).expect("write test file");
        path
    }

    /// Every file and directory under the vault, with each file's SHA-256.
    pub fn vault_snapshot(&self) -> BTreeMap<String, String> {
        snapshot(&self.vault_dir())
    }

    /// `ldv --json put SRC NAME` through `cmd`'s flags, asserting success; the receipt.
    pub fn put_json(&self, mut cmd: Command, src: &Path, name: &str) -> Value {
        let out = cmd
            .arg("--json")
            .arg("put")
            .arg(src)
            .arg(name)
            .assert()
            .success();
        json_of(out.get_output())
    }

    /// The chunk list of `name` as `(offset, size, id)`, from `stat --json`.
    pub fn chunks_of(&self, mut cmd: Command, name: &str) -> Vec<(u64, u64, String)> {
        let out = cmd.args(["--json", "stat", name]).assert().success();
        json_of(out.get_output())["chunks"]
            .as_array()
            .expect("stat --json has a chunks array")
            .iter()
            .map(|c| {
                (
                    c["offset"].as_u64().unwrap(),
                    c["size"].as_u64().unwrap(),
                    c["id"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// The object file of chunk `id` in a format-1 vault.
    pub fn chunk_file(&self, id: &str) -> PathBuf {
        self.vault_dir().join("chunks").join(&id[..2]).join(id)
    }

    /// The `format` of the vault's descriptor (`ldv-vault.json`).
    pub fn vault_format(&self) -> u64 {
        let path = self.vault_dir().join("ldv-vault.json");
        let text = std::fs::read(&path).expect("read ldv-vault.json");
        let descriptor: Value = serde_json::from_slice(&text).expect("ldv-vault.json is JSON");
        u(&descriptor["format"])
    }

    /// Every pack object (`packs/<2 hex>/<64 hex>`) of the vault, sorted.
    pub fn packs(&self) -> Vec<PathBuf> {
        objects_below(&self.vault_dir().join("packs"), 2)
    }

    /// The packs not in `before` (an earlier [`Env::packs`]): what the commands since wrote.
    pub fn packs_since(&self, before: &[PathBuf]) -> Vec<PathBuf> {
        let mut new = self.packs();
        new.retain(|p| !before.contains(p));
        new
    }

    /// Every index segment (`index/<64 hex>`, not gc marks) of the vault, sorted.
    pub fn index_segments(&self) -> Vec<PathBuf> {
        objects_below(&self.vault_dir().join("index"), 1)
    }

    /// Every chunk object (`chunks/<2 hex>/<64 hex>`) of the vault, sorted.
    pub fn chunk_objects(&self) -> Vec<PathBuf> {
        objects_below(&self.vault_dir().join("chunks"), 2)
    }

    /// Where every chunk's frame is stored, by chunk id: each chunk object of a format-1 vault,
    /// each range of a pack in a format-2 vault (read from the packs' trailers, which only an
    /// unencrypted vault leaves readable: see [`Env::sealed_frames`]).
    pub fn frames(&self) -> BTreeMap<String, Frame> {
        let mut out = BTreeMap::new();
        for file in self.chunk_objects() {
            let id = file.file_name().unwrap().to_string_lossy().into_owned();
            let len = std::fs::metadata(&file).unwrap().len() as usize;
            out.insert(id, Frame::whole(file, len));
        }
        for pack in self.packs() {
            let bytes = std::fs::read(&pack).expect("read pack");
            for (id, offset, len) in pack_entries(&bytes) {
                let frame = Frame {
                    file: pack.clone(),
                    offset,
                    len,
                    whole: false,
                };
                assert!(
                    out.insert(id.clone(), frame).is_none(),
                    "chunk {id} is stored twice"
                );
            }
        }
        out
    }

    /// Where chunk `id`'s frame is stored (see [`Env::frames`]).
    #[track_caller]
    pub fn frame_of(&self, id: &str) -> Frame {
        self.frames()
            .remove(id)
            .unwrap_or_else(|| panic!("chunk {id} is stored nowhere in the vault"))
    }

    /// Where the frames of `chunks` (id and stored length, as from [`Env::stored_of`]) are, in a
    /// vault whose pack trailers may be sealed: format 1 has a chunk object per id; in format 2
    /// the frames of a pack are back to back before its trailer (whose length its tail gives),
    /// each starting with `LDVC` and the frame format, so every pack is cut by the stored
    /// lengths, which must account for all of its frames. Chunks of equal stored length may be
    /// found at each other's places: see [`Env::sealed_frames_in`].
    #[track_caller]
    pub fn sealed_frames(&self, chunks: &[(String, u64)]) -> BTreeMap<String, Frame> {
        self.sealed_frames_in(&self.packs(), chunks)
    }

    /// [`Env::sealed_frames`] in `packs` only (say, the one pack a put wrote; ignored in
    /// format 1).
    #[track_caller]
    pub fn sealed_frames_in(
        &self,
        packs: &[PathBuf],
        chunks: &[(String, u64)],
    ) -> BTreeMap<String, Frame> {
        if self.vault_format() == 1 {
            return chunks
                .iter()
                .map(|(id, stored)| {
                    let file = self.chunk_file(id);
                    let len = std::fs::metadata(&file).unwrap().len();
                    assert_eq!(len, *stored, "chunk object {id}");
                    (id.clone(), Frame::whole(file, len as usize))
                })
                .collect();
        }
        let mut by_len: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for (id, stored) in chunks {
            let ids = by_len.entry(*stored as usize).or_default();
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        let wanted: usize = by_len.values().map(Vec::len).sum();
        let mut out = BTreeMap::new();
        for pack in packs {
            let bytes = std::fs::read(pack).expect("read pack");
            let cut = cut_sealed_pack(&bytes, &mut by_len).unwrap_or_else(|| {
                panic!(
                    "the frames of {} are not the stored lengths given",
                    pack.display()
                )
            });
            for (id, offset, len) in cut {
                let frame = Frame {
                    file: pack.clone(),
                    offset,
                    len,
                    whole: false,
                };
                out.insert(id, frame);
            }
        }
        assert_eq!(out.len(), wanted, "not every chunk was found in a pack");
        out
    }

    /// `(id, stored length)` of every chunk of `name`, from `stat --json`.
    pub fn stored_of(&self, mut cmd: Command, name: &str) -> Vec<(String, u64)> {
        let out = cmd.args(["--json", "stat", name]).assert().success();
        json_of(out.get_output())["chunks"]
            .as_array()
            .expect("stat --json has a chunks array")
            .iter()
            .map(|c| (c["id"].as_str().unwrap().to_owned(), u(&c["stored"])))
            .collect()
    }

    /// Replaces chunk `id`'s stored frame with `frame`, of any length, as a vault holding that
    /// frame would have it: format 1 rewrites the chunk object; format 2 (unencrypted) writes the
    /// pack again with `frame` in its place and a new trailer, under its new name (the SHA-256
    /// of trailer and tail), and replaces every index segment with one listing every pack, as
    /// `ldv` itself would index them.
    pub fn replace_frame(&self, id: &str, frame: &[u8]) {
        let old = self.frame_of(id);
        if old.whole {
            write_over(&old.file, frame);
            return;
        }
        let bytes = std::fs::read(&old.file).unwrap();
        let mut builder = PackBuilder::default();
        for (other, offset, len) in pack_entries(&bytes) {
            if other == id {
                builder.push(&other, frame);
            } else {
                builder.push(&other, &bytes[offset..offset + len]);
            }
        }
        let (name, new) = builder.finish();
        make_writable(&old.file);
        std::fs::remove_file(&old.file).unwrap();
        let dir = self.vault_dir().join("packs").join(&name[..2]);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(&name), &new).unwrap();
        self.reindex();
    }

    /// Replaces every index segment with one listing every pack from its own trailer.
    pub fn reindex(&self) {
        let index: Vec<IndexedPack> = self
            .packs()
            .iter()
            .map(|pack| {
                let name = pack.file_name().unwrap().to_string_lossy().into_owned();
                (name, pack_entries(&std::fs::read(pack).unwrap()))
            })
            .collect();
        self.write_index(&index);
    }

    /// Replaces every index segment of an unencrypted vault with one listing `packs`: each
    /// pack's name and its `(chunk id, offset, length)` entries, true or not.
    pub fn write_index(&self, packs: &[IndexedPack]) {
        let mut segment = b"LDVIDX2\n".to_vec();
        segment.extend_from_slice(&0u32.to_le_bytes());
        segment.extend_from_slice(&(packs.len() as u32).to_le_bytes());
        for (name, entries) in packs {
            segment.extend_from_slice(&hex_bytes(name));
            segment.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            for (id, offset, len) in entries {
                segment.extend_from_slice(&hex_bytes(id));
                segment.extend_from_slice(&u32::try_from(*offset).unwrap().to_le_bytes());
                segment.extend_from_slice(&u32::try_from(*len).unwrap().to_le_bytes());
            }
        }
        for old in self.index_segments() {
            make_writable(&old);
            std::fs::remove_file(old).unwrap();
        }
        let dir = self.vault_dir().join("index");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(sha256_hex(&segment)), &segment).unwrap();
    }

    /// Names and versions shown by `ls --versions --json` (optionally under `prefix`).
    pub fn versions(&self, mut cmd: Command, prefix: Option<&str>) -> Vec<(String, String)> {
        cmd.args(["--json", "ls", "--versions"]);
        if let Some(p) = prefix {
            cmd.arg(p);
        }
        let out = cmd.assert().success();
        json_of(out.get_output())
            .as_array()
            .expect("ls --json is an array")
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap().to_owned(),
                    e["version"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

/// Where one chunk's frame is stored: a whole format-1 chunk object, or a range of a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The chunk object or pack.
    pub file: PathBuf,
    /// Where the frame starts in `file`.
    pub offset: usize,
    /// The frame's length.
    pub len: usize,
    /// Whether the frame is all of `file` (a format-1 chunk object).
    pub whole: bool,
}

impl Frame {
    fn whole(file: PathBuf, len: usize) -> Self {
        Self {
            file,
            offset: 0,
            len,
            whole: true,
        }
    }

    /// The frame's bytes.
    pub fn read(&self) -> Vec<u8> {
        let data = std::fs::read(&self.file).expect("read the file of a frame");
        assert!(
            data.len() >= self.offset + self.len,
            "{self:?} is cut short"
        );
        data[self.offset..self.offset + self.len].to_vec()
    }

    /// Overwrites the frame in place with `bytes` of its own length.
    #[track_caller]
    pub fn write(&self, bytes: &[u8]) {
        assert_eq!(
            bytes.len(),
            self.len,
            "a frame written in place keeps its length"
        );
        let mut data = std::fs::read(&self.file).expect("read the file of a frame");
        data[self.offset..self.offset + self.len].copy_from_slice(bytes);
        write_over(&self.file, &data);
    }

    /// Flips the lowest bit of the frame's byte `at`.
    #[track_caller]
    pub fn flip(&self, at: usize) {
        assert!(at < self.len, "byte {at} of a {}-byte frame", self.len);
        flip_byte(&self.file, self.offset + at);
    }

    /// The file's length when it ends with this frame: cutting the file there leaves this frame
    /// whole (and, in a pack, no trailer).
    pub fn end(&self) -> usize {
        self.offset + self.len
    }
}

/// `(chunk id, offset, length)`: where a frame is in its pack.
pub type PackEntry = (String, usize, usize);

/// A pack's name and its entries, as an index segment lists them.
pub type IndexedPack = (String, Vec<PackEntry>);

/// The last eight bytes of every format-2 pack.
pub const PACK_MAGIC: &[u8; 8] = b"LDVPACK2";

/// The frames' length and the trailer's length of a pack: `frames ‖ trailer ‖ u32 LE trailer
/// length ‖ "LDVPACK2"`.
#[track_caller]
pub fn pack_layout(pack: &[u8]) -> (usize, usize) {
    let tail = pack.len().checked_sub(12).expect("a pack has a tail");
    assert_eq!(&pack[tail + 4..], PACK_MAGIC, "a pack ends with LDVPACK2");
    let trailer = u32::from_le_bytes(pack[tail..tail + 4].try_into().unwrap()) as usize;
    (tail - trailer, trailer)
}

/// `(chunk id, offset, length)` of every frame of an unencrypted pack, from its trailer
/// ("LDVT", 16 bytes of salt, a u32 count, then 32-byte id, u32 offset and u32 length per
/// frame).
#[track_caller]
pub fn pack_entries(pack: &[u8]) -> Vec<PackEntry> {
    let (frames_len, trailer_len) = pack_layout(pack);
    let trailer = &pack[frames_len..frames_len + trailer_len];
    assert!(
        !trailer.starts_with(b"LDVC"),
        "the pack's trailer is sealed (an encrypted vault): use Env::sealed_frames"
    );
    assert_eq!(&trailer[..4], b"LDVT", "a plain trailer starts with LDVT");
    let count = u32::from_le_bytes(trailer[20..24].try_into().unwrap()) as usize;
    let rest = &trailer[24..];
    assert_eq!(rest.len(), count * 40, "a trailer of {count} entries");
    rest.chunks_exact(40)
        .map(|e| {
            let offset = u32::from_le_bytes(e[32..36].try_into().unwrap()) as usize;
            let len = u32::from_le_bytes(e[36..40].try_into().unwrap()) as usize;
            assert!(
                offset + len <= frames_len,
                "a trailer entry past the frames"
            );
            (hex_of(&e[..32]), offset, len)
        })
        .collect()
}

/// The frames of a pack whose trailer may be sealed, cut by stored lengths (each length with the
/// ids of chunks that long, taken as their frames are found): `(id, offset, length)` of each,
/// or `None` when the lengths cannot account for every frame of the pack (see
/// [`Env::sealed_frames`]).
pub fn cut_sealed_pack(
    pack: &[u8],
    by_len: &mut BTreeMap<usize, Vec<String>>,
) -> Option<Vec<PackEntry>> {
    let (frames_len, _) = pack_layout(pack);
    cut_frames(&pack[..frames_len], 0, by_len)
}

/// Cuts `frames` (from `at`) into frames of the lengths in `by_len` (each taken by one of its
/// ids): each starts with `LDVC` and frame format 1, and ends where the next starts or at the
/// end. Backtracks over lengths that fit; `None` when no cut uses only the given lengths.
fn cut_frames(
    frames: &[u8],
    at: usize,
    by_len: &mut BTreeMap<usize, Vec<String>>,
) -> Option<Vec<PackEntry>> {
    const FRAME_START: &[u8] = b"LDVC\x01";
    if at == frames.len() {
        return Some(Vec::new());
    }
    if !frames[at..].starts_with(FRAME_START) {
        return None;
    }
    let lens: Vec<usize> = by_len
        .iter()
        .filter(|(len, ids)| !ids.is_empty() && at + **len <= frames.len())
        .map(|(len, _)| *len)
        .collect();
    for len in lens {
        let end = at + len;
        if end != frames.len() && !frames[end..].starts_with(FRAME_START) {
            continue;
        }
        let id = by_len.get_mut(&len).unwrap().pop().unwrap();
        if let Some(mut rest) = cut_frames(frames, end, by_len) {
            rest.push((id, at, len));
            return Some(rest);
        }
        by_len.get_mut(&len).unwrap().push(id);
    }
    None
}

/// An unencrypted pack being built, as `ldv` builds them.
#[derive(Default)]
struct PackBuilder {
    frames: Vec<u8>,
    entries: Vec<u8>,
    count: u32,
}

impl PackBuilder {
    fn push(&mut self, id: &str, frame: &[u8]) {
        self.entries.extend_from_slice(&hex_bytes(id));
        self.entries
            .extend_from_slice(&(self.frames.len() as u32).to_le_bytes());
        self.entries
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.frames.extend_from_slice(frame);
        self.count += 1;
    }

    /// The pack's name (the SHA-256 of its trailer and tail) and its bytes.
    fn finish(self) -> (String, Vec<u8>) {
        let mut trailer = b"LDVT".to_vec();
        trailer.extend_from_slice(&rand::random::<[u8; 16]>());
        trailer.extend_from_slice(&self.count.to_le_bytes());
        trailer.extend_from_slice(&self.entries);
        let mut pack = self.frames;
        let frames_len = pack.len();
        pack.extend_from_slice(&trailer);
        pack.extend_from_slice(&(trailer.len() as u32).to_le_bytes());
        pack.extend_from_slice(PACK_MAGIC);
        (sha256_hex(&pack[frames_len..]), pack)
    }
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    assert_eq!(hex.len(), 64, "{hex} is not 64 hex digits");
    (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// The files `depth` levels below `dir` named by 64 hex digits, sorted.
fn objects_below(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let mut level = vec![dir.to_path_buf()];
    for _ in 1..depth {
        level = level
            .iter()
            .flat_map(|d| std::fs::read_dir(d).into_iter().flatten())
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
    }
    let mut out: Vec<PathBuf> = level
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten())
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            p.is_file() && name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
        })
        .collect();
    out.sort();
    out
}

/// Makes a (possibly read-only) file writable, so it can be replaced or removed.
fn make_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A TOML basic string holding `path` (JSON string syntax is valid TOML for these paths).
pub fn toml_string(path: &Path) -> String {
    serde_json::to_string(path.to_str().expect("temp paths are UTF-8")).unwrap()
}

/// `len` pseudo-random bytes determined by `seed` (splitmix64; fast even in debug builds).
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut out = vec![0u8; len.div_ceil(8) * 8];
    for word in out.chunks_exact_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        word.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex_of(&Sha256::digest(data))
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses stdout as exactly one JSON document.
pub fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Stdout as UTF-8 lines.
pub fn lines_of(out: &Output) -> Vec<String> {
    String::from_utf8(out.stdout.clone())
        .expect("stdout is UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Asserts stderr is one line `ldv: error: ...` and returns it.
pub fn error_line(out: &Output) -> String {
    let stderr = String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected a one-line error on stderr, got:\n{stderr}"
    );
    assert!(
        lines[0].starts_with("ldv: error: "),
        "unexpected stderr: {stderr}"
    );
    lines[0].to_owned()
}

/// Every entry under `dir`: directories as `"dir"`, files as their SHA-256 (hidden temp files
/// included, so a stray one shows up as a change).
pub fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("read dir entry").path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                out.insert(rel, "dir".into());
                walk(root, &path, out);
            } else {
                let data = std::fs::read(&path).expect("read vault file");
                out.insert(rel, sha256_hex(&data));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// Every regular file under `dir` with its content, keyed by relative path.
pub fn tree_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    snapshot(dir)
        .into_iter()
        .filter(|(_, v)| v != "dir")
        .map(|(rel, _)| {
            let data = std::fs::read(dir.join(&rel)).unwrap();
            (rel, data)
        })
        .collect()
}

/// Whether file permissions deny this process (false when running as root, where chmod 000
/// does not stop reads or writes).
pub fn permissions_enforced(scratch: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let probe = scratch.join(".perm-probe");
    std::fs::write(&probe, b"x").unwrap();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o000)).unwrap();
    let enforced = std::fs::File::open(&probe).is_err();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(&probe).unwrap();
    enforced
}

/// Flips the lowest bit of the byte at `offset` in `path`.
pub fn flip_byte(path: &Path, offset: usize) {
    let mut data = std::fs::read(path).expect("read file to damage");
    data[offset] ^= 0x01;
    write_over(path, &data);
}

/// Replaces a (possibly read-only) file's content.
pub fn write_over(path: &Path, data: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map(|m| m.permissions().mode());
    if mode.is_ok() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::write(path, data).expect("write damaged file");
    if let Ok(mode) = mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// Asserts `got == want` without dumping megabytes: reports lengths and the first difference.
#[track_caller]
pub fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, want {}; first difference at {first:?}",
            got.len(),
            want.len()
        );
    }
}

/// Asserts the file at `path` holds exactly `want`.
#[track_caller]
pub fn assert_file(path: &Path, want: &[u8]) {
    let got = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_bytes(&got, want, &path.display().to_string());
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

/// Runs `cmd` to its end and returns what it printed, whatever its exit status.
pub fn output(mut cmd: Command) -> Output {
    cmd.output().expect("run ldv")
}

/// Stdout and stderr of `out` as one string, for searching.
pub fn all_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `ldv --json put SRC NAME` through `cmd`, asserting success: the receipt.
pub fn put(mut cmd: Command, src: &Path, name: &str) -> Value {
    let out = cmd
        .args(["--json", "put"])
        .arg(src)
        .arg(name)
        .assert()
        .success();
    json_of(out.get_output())
}

/// `ldv --json get NAME DEST` through `cmd`, asserting success and that DEST holds `want`: the
/// receipt.
pub fn get(mut cmd: Command, name: &str, dest: &Path, want: &[u8]) -> Value {
    let out = cmd
        .args(["--json", "get", name])
        .arg(dest)
        .assert()
        .success();
    assert_file(dest, want);
    let receipt = json_of(out.get_output());
    assert_eq!(receipt["sha256"], sha256_hex(want));
    assert_eq!(receipt["size"], want.len() as u64);
    receipt
}

/// `ldv --json verify --read-data` through `cmd`, asserting exit 0 and no problem: the report.
pub fn verify_clean(mut cmd: Command) -> Value {
    let out = cmd
        .args(["--json", "verify", "--read-data"])
        .assert()
        .code(0);
    let report = json_of(out.get_output());
    assert_eq!(report["problems"], serde_json::json!([]), "{report:#}");
    assert_eq!(
        report["could_not_check"],
        serde_json::json!([]),
        "{report:#}"
    );
    report
}

/// A JSON number that must be an unsigned integer.
pub fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("{v} is not an unsigned number"))
}

/// put, get (byte-identical, every chunk verified) and a second put of the same file that
/// uploads no chunk, through `ldv` (a command factory) on a remote vault; test files go under
/// `env`. Returns the first receipt.
pub fn round_trip(env: &Env, ldv: impl Fn() -> Command, seed: u64, len: usize) -> Value {
    let data = random_bytes(seed, len);
    let src = env.write(&format!("src-{seed}.bin"), &data);
    let name = format!("data/file-{seed}.bin");

    let first = put(ldv(), &src, &name);
    assert_eq!(first["name"], name.as_str());
    assert_eq!(first["size"], len as u64);
    assert_eq!(first["sha256"], sha256_hex(&data));
    let chunks = u(&first["chunks"]);
    assert!(chunks >= 4, "expected many chunks, got {first:#}");
    assert_eq!(first["new_chunks"], chunks, "{first:#}");
    assert!(u(&first["bytes_uploaded"]) >= len as u64, "{first:#}");
    assert_eq!(u(&first["stats"]["store"]["chunks_uploaded"]), chunks);

    let got = get(ldv(), &name, &env.path(&format!("out-{seed}.bin")), &data);
    assert_eq!(got["chunks"], chunks);
    assert_eq!(
        u(&got["stats"]["store"]["integrity_checks_passed"]),
        chunks,
        "{got:#}"
    );

    let second = put(ldv(), &src, &name);
    assert_eq!(
        second["new_chunks"], 0,
        "second put uploaded chunks: {second:#}"
    );
    assert_eq!(second["bytes_uploaded"], 0, "{second:#}");
    assert_eq!(second["existing_chunks"], chunks, "{second:#}");
    assert_eq!(second["stats"]["store"]["chunks_uploaded"], 0);
    // Only the manifest and the lock went up.
    let sent = u(&second["stats"]["backend"]["bytes_uploaded"]);
    assert!(sent < 64 * 1024, "second put sent {sent} bytes");
    assert_ne!(second["version"], first["version"]);
    first
}

/// Runs each of `commands` through `ldv` against an endpoint nothing listens on: each ends
/// within `limit`; `health` reports UNHEALTHY (exit 1) naming the endpoint, every other command
/// exits 6 with one line naming the endpoint, the refused connection and `attempts` attempts.
pub fn assert_unreachable(
    ldv: impl Fn() -> Command,
    endpoint: &str,
    commands: &[&[&str]],
    attempts: u32,
    limit: Duration,
) {
    for &args in commands {
        let started = Instant::now();
        let out = output({
            let mut c = ldv();
            c.args(args);
            c
        });
        let took = started.elapsed();
        assert!(took < limit, "{args:?} took {took:?}");
        if args == ["health"] {
            // health reports rather than fails: unhealthy, exit 1, naming the endpoint.
            assert_eq!(out.status.code(), Some(1), "{}", all_text(&out));
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("UNHEALTHY") && text.contains(endpoint),
                "{text}"
            );
            continue;
        }
        assert_eq!(out.status.code(), Some(6), "{args:?}: {}", all_text(&out));
        let line = error_line(&out);
        assert!(line.contains(endpoint), "{args:?}: {line}");
        assert!(
            line.contains(&format!("gave up after {attempts} attempts")),
            "{args:?}: {line}"
        );
        assert!(line.contains("refused"), "{args:?}: {line}");
    }
}

/// What [`run_bounded`] saw of one run of a command.
pub struct Bounded {
    /// How the process ended.
    pub status: std::process::ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
    /// Its peak resident set size in KiB (`ru_maxrss` from `wait4`).
    pub max_rss_kib: u64,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
}

/// The environment variable that turns [`rss_probe`] on: the command to run, as JSON.
const PROBE_SPEC: &str = "LDV_TEST_RSS_PROBE_SPEC";

/// Runs `cmd` (stdin empty, stdout and stderr captured) and reports its exit, output, peak RSS
/// and wall time; a run still going after `limit` is killed and the test fails, showing what
/// it had printed.
///
/// The peak comes from `wait4`, but not of a child of this process: a child's `ru_maxrss`
/// includes the peak of the memory it started from before its exec, which for a child of this
/// test process is this process's own peak (hundreds of MiB after a test that built a big
/// manifest). So this test binary is started again as a small middleman ([`rss_probe`]) that
/// spawns the command, waits for it with `wait4` and reports.
pub fn run_bounded(cmd: std::process::Command, limit: Duration) -> Bounded {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::Stdio;

    let dir = tempfile::tempdir().expect("temp dir for a bounded run");
    let (out_path, err_path, result_path) = (
        dir.path().join("stdout"),
        dir.path().join("stderr"),
        dir.path().join("result"),
    );
    let text = |s: &std::ffi::OsStr| s.to_str().expect("UTF-8 command").to_owned();
    let spec = serde_json::json!({
        "program": text(cmd.get_program()),
        "args": cmd.get_args().map(text).collect::<Vec<_>>(),
        "dir": cmd.get_current_dir().map(|d| text(d.as_os_str())),
        "envs": cmd.get_envs().map(|(k, v)| (text(k), v.map(text))).collect::<Vec<_>>(),
        "stdout": out_path, "stderr": err_path, "result": result_path,
    });
    // /proc/self/exe still runs this binary when a rebuild has replaced its file meanwhile.
    let exe = Path::new("/proc/self/exe");
    let exe = if exe.exists() {
        exe.to_path_buf()
    } else {
        std::env::current_exe().expect("test binary")
    };
    let mut probe = std::process::Command::new(exe);
    probe
        .args([
            "--exact",
            "common::rss_probe",
            "--ignored",
            "--test-threads=1",
            "-q",
        ])
        .env(PROBE_SPEC, spec.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own group, so a kill reaches the command too.
        .process_group(0);
    let started = Instant::now();
    let mut middleman = probe.spawn().expect("spawn the test binary as a middleman");
    let pid = libc::pid_t::try_from(middleman.id()).expect("a pid fits pid_t");
    let mut killed = false;
    while middleman
        .try_wait()
        .expect("wait for the middleman")
        .is_none()
    {
        if started.elapsed() > limit {
            // SAFETY: signalling the process group this function created.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            middleman.wait().expect("reap the middleman");
            killed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let read = |p: &Path| std::fs::read(p).unwrap_or_default();
    let (stdout, stderr) = (read(&out_path), read(&err_path));
    assert!(
        !killed,
        "still running after {limit:?}, killed; stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&stdout[..stdout.len().min(4096)]),
        String::from_utf8_lossy(&stderr[..stderr.len().min(4096)])
    );
    let result = String::from_utf8(read(&result_path)).expect("probe result");
    let fields: Vec<u64> = result
        .split_whitespace()
        .map(|f| f.parse().expect("probe result numbers"))
        .collect();
    assert_eq!(fields.len(), 3, "the middleman reported {result:?}");
    Bounded {
        status: std::process::ExitStatus::from_raw(i32::try_from(fields[0]).expect("wait status")),
        stdout,
        stderr,
        max_rss_kib: fields[1],
        elapsed: Duration::from_micros(fields[2]),
    }
}

/// The middleman of [`run_bounded`]: when `$LDV_TEST_RSS_PROBE_SPEC` names a command, runs it
/// with its output in the named files and writes its wait status, peak RSS (KiB) and wall time
/// (µs); without the variable it does nothing.
#[test]
#[ignore = "run_bounded's middleman; does nothing on its own"]
fn rss_probe() {
    let Ok(spec) = std::env::var(PROBE_SPEC) else {
        return;
    };
    let spec: Value = serde_json::from_str(&spec).unwrap();
    let s = |v: &Value| v.as_str().unwrap().to_owned();
    let mut cmd = std::process::Command::new(s(&spec["program"]));
    cmd.args(spec["args"].as_array().unwrap().iter().map(s));
    if let Some(dir) = spec["dir"].as_str() {
        cmd.current_dir(dir);
    }
    cmd.env_remove(PROBE_SPEC);
    for kv in spec["envs"].as_array().unwrap() {
        match kv[1].as_str() {
            Some(v) => cmd.env(s(&kv[0]), v),
            None => cmd.env_remove(s(&kv[0])),
        };
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(s(&spec["stdout"])).unwrap())
        .stderr(std::fs::File::create(s(&spec["stderr"])).unwrap());
    let started = Instant::now();
    // Reaped by the wait4 below, which `Child::wait` cannot do: it gives no rusage.
    #[allow(clippy::zombie_processes)]
    let child = cmd.spawn().expect("spawn the command");
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain old data; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is this process's unreaped child; `status` and `usage` outlive the call.
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(got, pid, "wait4: {}", std::io::Error::last_os_error());
    let elapsed = started.elapsed().as_micros();
    std::fs::write(
        s(&spec["result"]),
        format!("{} {} {elapsed}", status as u32, usage.ru_maxrss),
    )
    .unwrap();
}
