//! A process as its core file shows it: pid, threads and mapped files from
//! the notes, and a local file read in place of the Ruby binary when the
//! user names one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Result;
use crate::memory::{CoreFile, CoreMemory};

use super::elf::ElfImage;
use super::maps::{self, Mapping};
use super::ProcessView;

/// The [`ProcessView`] of a core file.
pub struct CoreView {
    core: Arc<CoreFile>,
    mappings: Vec<Mapping>,
    /// Local files read in place of recorded paths.
    substitutes: HashMap<String, PathBuf>,
}

impl CoreView {
    /// Describes the process in `core`. With `binary`, that file is read in
    /// place of a recorded file (see [`replaced_path`]).
    pub fn new(core: Arc<CoreFile>, binary: Option<&Path>) -> CoreView {
        let mappings: Vec<Mapping> = core
            .mappings()
            .iter()
            .map(|m| Mapping {
                start: m.start,
                end: m.end,
                readable: true,
                executable: false,
                offset: m.offset,
                inode: 0,
                path: Some(m.path.clone()),
                deleted: false,
            })
            .collect();
        let mut substitutes = HashMap::new();
        if let Some(binary) = binary {
            if let Some(recorded) = replaced_path(binary, &core) {
                substitutes.insert(recorded, binary.to_path_buf());
            }
        }
        CoreView {
            core,
            mappings,
            substitutes,
        }
    }

    /// Returns the core's memory, with the same substitutes.
    pub fn memory(&self) -> CoreMemory {
        CoreMemory::new(Arc::clone(&self.core), self.substitutes.clone())
    }

    pub fn core(&self) -> &CoreFile {
        &self.core
    }

    /// Describes how a user-supplied binary differs from the build that
    /// the process mapped, when the core records that build's ID and the
    /// two differ.
    pub fn substitute_mismatch(&self) -> Option<String> {
        for (recorded, local) in &self.substitutes {
            let first = self
                .mappings
                .iter()
                .find(|m| m.path.as_deref() == Some(recorded.as_str()) && m.offset == 0)?;
            let expected = self.core.build_id_at(first.start)?;
            let found = ElfImage::open(local).ok()?.build_id().map(<[u8]>::to_vec);
            match found {
                Some(found) if found != expected => {
                    return Some(format!(
                        "{} has build ID {}, but the process mapped {recorded} with build ID {}",
                        local.display(),
                        hex(&found),
                        hex(&expected)
                    ))
                }
                None => {
                    return Some(format!(
                        "{} has no build ID, but the process mapped {recorded} with build ID {}",
                        local.display(),
                        hex(&expected)
                    ))
                }
                _ => {}
            }
        }
        None
    }
}

impl ProcessView for CoreView {
    fn pid(&self) -> i32 {
        self.core.pid()
    }

    fn mappings(&self) -> &[Mapping] {
        &self.mappings
    }

    fn executable(&self) -> Result<Option<String>> {
        Ok(self.core.executable().map(str::to_string))
    }

    /// Opens the substitute of `path`, or `path` itself, and checks that
    /// it is the build the process mapped where the core shows its build
    /// ID: symbols of another build would lead to wrong addresses.
    fn open_elf(&self, path: &str, own: &[&Mapping]) -> Result<ElfImage, String> {
        let local = self
            .substitutes
            .get(path)
            .cloned()
            .unwrap_or_else(|| PathBuf::from(path));
        let image = ElfImage::open(&local).map_err(|reason| match local.to_str() {
            Some(same) if same == path => reason,
            _ => format!("{reason} (reading {})", local.display()),
        })?;
        let first = own.iter().find(|m| m.offset == 0);
        let recorded = first.and_then(|m| self.core.build_id_at(m.start));
        match (recorded, image.build_id()) {
            (Some(recorded), Some(local_id)) if recorded != local_id => Err(format!(
                "{} has build ID {}, but the process mapped a build with ID {}",
                local.display(),
                hex(local_id),
                hex(&recorded)
            )),
            _ => Ok(image),
        }
    }

    fn thread_ids(&self) -> Vec<i32> {
        self.core.thread_ids().to_vec()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Picks the recorded path that a user-supplied binary replaces: the same
/// path (after resolving links), else the same file name, else the first
/// mapped libruby, else the executable.
fn replaced_path(binary: &Path, core: &CoreFile) -> Option<String> {
    let resolved = std::fs::canonicalize(binary).unwrap_or_else(|_| binary.to_path_buf());
    let paths: Vec<&str> = core.mappings().iter().map(|m| m.path.as_str()).collect();
    let same_path = paths
        .iter()
        .find(|p| Path::new(p) == binary || Path::new(p) == resolved);
    let names = [binary.file_name(), resolved.file_name()];
    let same_name = paths.iter().find(|p| {
        let name = Path::new(p).file_name();
        name.is_some() && names.contains(&name)
    });
    let libruby = paths.iter().find(|p| maps::is_libruby(p));
    same_path
        .or(same_name)
        .or(libruby)
        .map(|p| p.to_string())
        .or_else(|| core.executable().map(str::to_string))
}
