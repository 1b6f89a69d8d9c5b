//! Roles and file capabilities, derived from what a policy says.
//!
//! A policy never states roles directly: a principal *is* a program provider because
//! `program.provider` names it, a data provider because an input names it, and so on. From the
//! roles follow the capabilities: which guest resources each principal, and the program
//! itself, may touch, with which rights, and when. `docs/policy.md` has the same table in
//! prose. The runtime turns [`Capabilities`] into its request checks and into the program's
//! WASI file system view; this module knows nothing of WASI.
//!
//! The mapping (deny by default: anything not listed is refused):
//!
//! | who | resource | rights | when |
//! |---|---|---|---|
//! | program provider | the program module | create, write | before the run |
//! | data provider | each input it provides (its own guest path) | create, write | before the run |
//! | run starter | the program module | execute (start a run) | before the run |
//! | result reader | each output it reads (file, stdout, stderr) | read | after the run |
//! | the program | every input path | read | during the run |
//! | the program | every output file path | create, write | during the run |
//! | the program | stdout and stderr | write | during the run |
//!
//! Nobody has `list`: no principal and not the program can enumerate directories, so no one
//! learns which optional inputs others uploaded except through what the program writes.

use std::collections::BTreeSet;
use std::fmt;

use crate::model::Policy;

/// A role a principal holds, derived from the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Named by `program.provider`: uploads the program.
    ProgramProvider,
    /// Named by at least one `inputs[].provider`: uploads those inputs.
    DataProvider,
    /// Named by at least one `outputs[].readers`: reads those outputs after a run.
    ResultReader,
    /// Named by `runs.starters`: may start a run.
    RunStarter,
}

impl Role {
    /// Every role, in table order.
    pub const ALL: [Role; 4] = [
        Role::ProgramProvider,
        Role::DataProvider,
        Role::ResultReader,
        Role::RunStarter,
    ];

    /// A short name for tables and messages: `program provider`, `data provider`, ...
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Role::ProgramProvider => "program provider",
            Role::DataProvider => "data provider",
            Role::ResultReader => "result reader",
            Role::RunStarter => "run starter",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every declared principal with the roles the policy gives it, in declaration order.
///
/// A principal with no role is listed with an empty set: it still consents to re-runs when
/// `runs.rerun_consent` is `all`. Names the policy uses without declaring them are ignored
/// (validation reports them).
#[must_use]
pub fn roles(policy: &Policy) -> Vec<(String, BTreeSet<Role>)> {
    policy
        .principals
        .iter()
        .map(|principal| {
            let name = principal.name.as_str();
            let mut held = BTreeSet::new();
            if policy.program.provider == name {
                held.insert(Role::ProgramProvider);
            }
            if policy.inputs.iter().any(|input| input.provider == name) {
                held.insert(Role::DataProvider);
            }
            if policy
                .outputs
                .iter()
                .any(|output| output.readers.iter().any(|r| r == name))
            {
                held.insert(Role::ResultReader);
            }
            if policy.runs.starters.iter().any(|s| s == name) {
                held.insert(Role::RunStarter);
            }
            (principal.name.clone(), held)
        })
        .collect()
}

/// Who holds a capability: a principal, or the program while it runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    /// A declared principal, by name.
    Principal(String),
    /// The guest program.
    Program,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Principal(name) => f.write_str(name),
            Subject::Program => f.write_str("(program)"),
        }
    }
}

/// A resource inside the computation that a capability is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// The program module itself.
    Program,
    /// A file at this absolute guest path.
    File(String),
    /// The program's standard output.
    Stdout,
    /// The program's standard error.
    Stderr,
}

impl Resource {
    /// The resource named by an output's `path` (`stdout`, `stderr` or a file path).
    #[must_use]
    pub fn from_output_path(path: &str) -> Resource {
        match path {
            "stdout" => Resource::Stdout,
            "stderr" => Resource::Stderr,
            path => Resource::File(path.to_owned()),
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Program => f.write_str("(program module)"),
            Resource::File(path) => f.write_str(path),
            Resource::Stdout => f.write_str("stdout"),
            Resource::Stderr => f.write_str("stderr"),
        }
    }
}

/// A set of rights on a resource.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Rights(u8);

impl Rights {
    /// No rights.
    pub const NONE: Rights = Rights(0);
    /// Read the contents.
    pub const READ: Rights = Rights(1);
    /// Write the contents.
    pub const WRITE: Rights = Rights(1 << 1);
    /// Create the resource (a file that does not exist yet; uploading the program or an input).
    pub const CREATE: Rights = Rights(1 << 2);
    /// List a directory's entries. No policy grants it today; it exists so that the type can
    /// say "no one lists" explicitly.
    pub const LIST: Rights = Rights(1 << 3);
    /// Execute: for the program module, start a run.
    pub const EXECUTE: Rights = Rights(1 << 4);

    const NAMES: [(Rights, &'static str); 5] = [
        (Rights::READ, "read"),
        (Rights::WRITE, "write"),
        (Rights::CREATE, "create"),
        (Rights::LIST, "list"),
        (Rights::EXECUTE, "execute"),
    ];

    /// Both sets together.
    #[must_use]
    pub const fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    /// Whether every right in `other` is in `self`.
    #[must_use]
    pub const fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set is empty.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names of the rights in the set, in the order read, write, create, list, execute.
    #[must_use]
    pub fn names(self) -> Vec<&'static str> {
        Rights::NAMES
            .iter()
            .filter(|(r, _)| self.contains(*r))
            .map(|(_, n)| *n)
            .collect()
    }
}

impl std::ops::BitOr for Rights {
    type Output = Rights;
    fn bitor(self, other: Rights) -> Rights {
        self.union(other)
    }
}

impl fmt::Display for Rights {
    /// `read,write`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&self.names().join(","))
        }
    }
}

impl fmt::Debug for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rights({self})")
    }
}

/// When in a computation's life a capability may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Before a run starts (the runtime's provisioning and ready states).
    BeforeRun,
    /// While the program runs.
    DuringRun,
    /// After a run has finished.
    AfterRun,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::BeforeRun => "before the run",
            Phase::DuringRun => "during the run",
            Phase::AfterRun => "after the run",
        })
    }
}

/// One capability: rights on a resource, usable in one phase.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Grant {
    /// What the rights are on.
    pub resource: Resource,
    /// The rights.
    pub rights: Rights,
    /// When they may be used.
    pub phase: Phase,
}

/// Every capability the policy gives, per subject: each declared principal (declaration order,
/// possibly with no grants) and then the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    entries: Vec<(Subject, Vec<Grant>)>,
}

impl Capabilities {
    /// Every subject and its grants.
    #[must_use]
    pub fn entries(&self) -> &[(Subject, Vec<Grant>)] {
        &self.entries
    }

    /// The grants of one subject (empty if it has none or is not declared).
    #[must_use]
    pub fn of(&self, subject: &Subject) -> &[Grant] {
        self.entries
            .iter()
            .find(|(s, _)| s == subject)
            .map_or(&[], |(_, grants)| grants.as_slice())
    }

    /// Whether `subject` may use all of `rights` on `resource` in `phase`.
    #[must_use]
    pub fn allows(
        &self,
        subject: &Subject,
        resource: &Resource,
        rights: Rights,
        phase: Phase,
    ) -> bool {
        self.of(subject)
            .iter()
            .any(|g| &g.resource == resource && g.phase == phase && g.rights.contains(rights))
    }
}

/// Derives every capability from the policy (see the module documentation for the table).
///
/// Works on any policy, valid or not; undeclared names get no entry of their own.
#[must_use]
pub fn capabilities(policy: &Policy) -> Capabilities {
    let upload = Rights::CREATE | Rights::WRITE;
    let mut entries: Vec<(Subject, Vec<Grant>)> = policy
        .principals
        .iter()
        .map(|principal| {
            let name = principal.name.as_str();
            let mut grants = Vec::new();
            if policy.program.provider == name {
                grants.push(Grant {
                    resource: Resource::Program,
                    rights: upload,
                    phase: Phase::BeforeRun,
                });
            }
            if policy.runs.starters.iter().any(|s| s == name) {
                grants.push(Grant {
                    resource: Resource::Program,
                    rights: Rights::EXECUTE,
                    phase: Phase::BeforeRun,
                });
            }
            for input in policy.inputs.iter().filter(|input| input.provider == name) {
                grants.push(Grant {
                    resource: Resource::File(input.path.clone()),
                    rights: upload,
                    phase: Phase::BeforeRun,
                });
            }
            for output in &policy.outputs {
                if output.readers.iter().any(|r| r == name) {
                    grants.push(Grant {
                        resource: Resource::from_output_path(&output.path),
                        rights: Rights::READ,
                        phase: Phase::AfterRun,
                    });
                }
            }
            (Subject::Principal(principal.name.clone()), grants)
        })
        .collect();

    let mut program = Vec::new();
    for input in &policy.inputs {
        program.push(Grant {
            resource: Resource::File(input.path.clone()),
            rights: Rights::READ,
            phase: Phase::DuringRun,
        });
    }
    for output in &policy.outputs {
        if let Resource::File(path) = Resource::from_output_path(&output.path) {
            program.push(Grant {
                resource: Resource::File(path),
                rights: upload,
                phase: Phase::DuringRun,
            });
        }
    }
    // stdout and stderr are always writable: a program that prints must not fail. What goes
    // to a stream no output lists is discarded by the runtime, never shown to anyone.
    for stream in [Resource::Stdout, Resource::Stderr] {
        program.push(Grant {
            resource: stream,
            rights: Rights::WRITE,
            phase: Phase::DuringRun,
        });
    }
    entries.push((Subject::Program, program));
    Capabilities { entries }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_set_operations_and_display() {
        let rw = Rights::READ | Rights::WRITE;
        assert!(rw.contains(Rights::READ));
        assert!(rw.contains(Rights::NONE));
        assert!(!rw.contains(Rights::READ | Rights::CREATE));
        assert_eq!(rw.to_string(), "read,write");
        assert_eq!(Rights::NONE.to_string(), "none");
        assert_eq!(
            (Rights::EXECUTE | Rights::LIST).names(),
            vec!["list", "execute"]
        );
    }

    #[test]
    fn output_paths_name_streams_or_files() {
        assert_eq!(Resource::from_output_path("stdout"), Resource::Stdout);
        assert_eq!(Resource::from_output_path("stderr"), Resource::Stderr);
        assert_eq!(
            Resource::from_output_path("/o"),
            Resource::File("/o".to_owned())
        );
    }
}
