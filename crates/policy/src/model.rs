//! The policy document: the serde types of the JSON every party checks and hashes.
//!
//! These types say what a policy *contains*; [`crate::validate`] says whether it makes sense.
//! Fields whose rules need more than a type (paths, hashes, certificates, times) are plain
//! strings here, so that a broken value becomes one entry in the list of problems instead of
//! stopping the parse at the first one.
//!
//! Every field is required in the JSON except those marked optional (an input's `sha256`,
//! `execution.fuel`), and `null` is never accepted: a valid document has exactly one way to say
//! each thing, so the hash of the model equals the RFC 8785 hash of the file.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::bounds;

/// The value of the `format` field: `"covenant-policy"`.
pub const FORMAT: &str = "covenant-policy";

/// The format version this build reads and writes: `1`.
pub const VERSION: u64 = 1;

/// The global policy of one computation: who takes part, what runs, on what data, who gets
/// the results, and which runtime may be trusted with all of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "Covenant policy",
    description = "The global policy of one Covenant computation (format version 1). See docs/policy.md."
)]
pub struct Policy {
    /// Always `"covenant-policy"`.
    pub format: FormatTag,
    /// Always `1` for this format.
    pub version: FormatVersion,
    /// The computation's id: one DNS label (lowercase letters, digits, `-`; at most 63 bytes).
    pub computation: String,
    /// When the policy stops being valid, as an RFC 3339 UTC time `YYYY-MM-DDTHH:MM:SSZ`.
    pub expires: String,
    /// Every party, by name, with its X.509 certificate (PEM). Names and certificates unique.
    pub principals: Vec<Principal>,
    /// The one program the computation runs.
    pub program: Program,
    /// The data the program reads, each from one named provider.
    pub inputs: Vec<Input>,
    /// What the program produces and who may read it.
    pub outputs: Vec<Output>,
    /// Who may start a run, and how many runs are allowed.
    pub runs: Runs,
    /// The engine and the limits of a run.
    pub execution: Execution,
    /// The attestation service and the runtime measurements the parties accept.
    pub attestation: Attestation,
}

/// A party to the computation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// The name the rest of the policy uses for this party: 1–64 bytes of letters, digits,
    /// `.`, `_`, `-`, starting with a letter or digit.
    pub name: String,
    /// The party's X.509 certificate, PEM-encoded (exactly one `CERTIFICATE` block). A client
    /// that presents this certificate over mutual TLS *is* this principal.
    pub certificate: String,
}

/// The program: a WebAssembly module pinned by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Program {
    /// A name for people (usually the file name); it is also the program's `argv[0]`.
    pub name: String,
    /// SHA-256 of the module's bytes, 64 lowercase hex digits. The runtime refuses any other.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub sha256: String,
    /// The principal who uploads the program.
    pub provider: String,
    /// Arguments after `argv[0]`.
    pub args: Vec<String>,
    /// Environment variables, name → value.
    #[serde(deserialize_with = "unique_keys")]
    pub env: BTreeMap<String, String>,
}

/// One input file: where the program sees it, and who provides it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Absolute, normalised guest path, e.g. `/input/a.csv`.
    pub path: String,
    /// The principal who uploads this input (and no one else may).
    pub provider: String,
    /// Optional: SHA-256 of the exact data (64 lowercase hex digits); anything else is refused.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    #[schemars(with = "String", regex(pattern = r"^[0-9a-f]{64}$"))]
    pub sha256: Option<String>,
    /// Largest accepted upload, in bytes.
    #[schemars(range(min = 1, max = bounds::MAX_INPUT_BYTES))]
    pub max_bytes: u64,
    /// Whether a run needs this input. An optional input that was not uploaded is absent from
    /// the program's file system.
    pub required: bool,
}

/// One output: a file the program writes, or its `stdout`/`stderr`, and who may read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// Absolute, normalised guest path, or `stdout` or `stderr`.
    pub path: String,
    /// The principals who may read this output after a run. At least one.
    pub readers: Vec<String>,
}

/// Who may start runs, and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Runs {
    /// The principals who may start a run. At least one.
    pub starters: Vec<String>,
    /// Runs allowed without further consent (1 to 1000).
    #[schemars(range(min = 1, max = bounds::MAX_RUNS))]
    pub max: u32,
    /// What it takes to run again once `max` runs have happened.
    pub rerun_consent: RerunConsent,
}

/// The consent rule for runs beyond `runs.max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RerunConsent {
    /// Every principal must consent to each further run.
    All,
    /// No further runs, whoever consents.
    Never,
}

impl RerunConsent {
    /// The JSON and TOML spelling: `all` or `never`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Never => "never",
        }
    }
}

/// How a run executes, and its limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Execution {
    /// The engine.
    pub strategy: Strategy,
    /// Largest linear memory, in bytes: a multiple of 64 KiB from 64 KiB to 4 GiB.
    #[schemars(range(min = bounds::MIN_MEMORY_BYTES, max = bounds::MAX_MEMORY_BYTES))]
    pub max_memory_bytes: u64,
    /// Optional instruction budget (1 to 10^13). Without it only the wall-time limit bounds CPU.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    #[schemars(with = "u64", range(min = 1, max = bounds::MAX_FUEL))]
    pub fuel: Option<u64>,
    /// Wall-time limit of one run, in milliseconds (1 ms to 24 h).
    #[schemars(range(min = bounds::MIN_TIMEOUT_MS, max = bounds::MAX_TIMEOUT_MS))]
    pub timeout_ms: u64,
    /// Largest total of everything the program writes (files, stdout, stderr), in bytes.
    #[schemars(range(min = 0, max = bounds::MAX_OUTPUT_BYTES))]
    pub max_output_bytes: u64,
    /// Whether the program may read clocks (WASI `clock_time_get`). Off, clocks read zero.
    pub clock: bool,
    /// Whether the program may read random bytes (WASI `random_get`). Off, the call fails.
    pub random: bool,
}

/// The engine a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// wasmtime with Cranelift: compiled to native code, fast.
    Jit,
    /// wasmi: an interpreter, slower, with a smaller trusted code base.
    Interpreter,
}

impl Strategy {
    /// The JSON and TOML spelling: `jit` or `interpreter`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jit => "jit",
            Self::Interpreter => "interpreter",
        }
    }
}

/// Which runtime the parties trust: who vouches for it, and what it must measure as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// The attestation service's URL (`http://` or `https://`).
    pub service: String,
    /// The attestation service's CA certificate, PEM. A runtime's TLS certificate must chain to it.
    pub ca_certificate: String,
    /// Accepted runtime measurements, platform name → lowercase hex digests. Platforms:
    /// `software`, `sgx`, `sev-snp`, `tdx`, `nitro`, `trustzone`, `sel4`.
    #[serde(deserialize_with = "unique_keys")]
    pub measurements: BTreeMap<String, Vec<String>>,
    /// What each hardware platform's evidence must show beyond its measurement, platform name →
    /// rules. A hardware platform absent here gets the strictest rules: no debugging, no
    /// migration agent, only an up-to-date TCB. Omitted from the canonical form when empty, so
    /// policies that do not use it keep their hash.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "unique_keys"
    )]
    pub appraisal: BTreeMap<String, Appraisal>,
}

/// What one hardware platform's evidence must show beyond its measurement. Every field is
/// optional and defaults to the strictest choice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Appraisal {
    /// Accept a runtime whose hardware lets the host debug it (read its memory): SEV-SNP guest
    /// policy DEBUG, TDX TD_ATTRIBUTES.DEBUG, SGX ATTRIBUTES.DEBUG, a Nitro debug-mode document.
    /// Only ever for development.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_debug: bool,
    /// `sev-snp` only: accept a guest policy that allows a migration agent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_migration_agent: bool,
    /// `tdx` and `sgx` only: Intel TCB statuses accepted besides `up-to-date`, by name:
    /// `sw-hardening-needed`, `configuration-needed`, `configuration-and-sw-hardening-needed`,
    /// `out-of-date`, `out-of-date-configuration-needed`, and for TDX 1.5
    /// `td-relaunch-advised`, `td-relaunch-advised-configuration-needed`. `revoked` is never
    /// accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_tcb_statuses: Vec<String>,
    /// `sgx` only: the MRSIGNER the enclave must have, 64 lowercase hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sgx_mrsigner: Option<String>,
    /// `sgx` only: the ISV product id the enclave must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sgx_isv_prod_id: Option<u16>,
}

/// The Intel TCB statuses a policy may accept besides `up-to-date` (which is always accepted).
pub const ACCEPTABLE_TCB_STATUSES: [&str; 7] = [
    "sw-hardening-needed",
    "configuration-needed",
    "configuration-and-sw-hardening-needed",
    "out-of-date",
    "out-of-date-configuration-needed",
    "td-relaunch-advised",
    "td-relaunch-advised-configuration-needed",
];

/// The `format` field, which can only be `"covenant-policy"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FormatTag;

impl Serialize for FormatTag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(FORMAT)
    }
}

impl<'de> Deserialize<'de> for FormatTag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text == FORMAT {
            Ok(Self)
        } else {
            Err(de::Error::custom(format_args!(
                "{text:?} is not a Covenant policy format; expected \"{FORMAT}\""
            )))
        }
    }
}

impl JsonSchema for FormatTag {
    fn schema_name() -> Cow<'static, str> {
        "FormatTag".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "const": FORMAT })
    }
}

/// The `version` field, which can only be `1` in this build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FormatVersion;

impl Serialize for FormatVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(VERSION)
    }
}

impl<'de> Deserialize<'de> for FormatVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let version = u64::deserialize(deserializer)?;
        if version == VERSION {
            Ok(Self)
        } else {
            Err(de::Error::custom(format_args!(
                "version {version} is not supported; this build reads version {VERSION}"
            )))
        }
    }
}

impl JsonSchema for FormatVersion {
    fn schema_name() -> Cow<'static, str> {
        "FormatVersion".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "const": VERSION })
    }
}

/// An optional field that, when present, must hold a value: `null` is refused so a document
/// has one spelling for "absent".
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A string-keyed map that refuses a repeated key. serde's maps keep the last of two equal
/// keys; two JSON parsers may disagree on which one wins, and a policy must mean one thing.
fn unique_keys<'de, D, V>(deserializer: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct UniqueKeys<V>(std::marker::PhantomData<V>);

    impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueKeys<V> {
        type Value = BTreeMap<String, V>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    return Err(de::Error::custom(format_args!("key {key:?} appears twice")));
                }
                let value = map.next_value()?;
                out.insert(key, value);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_map(UniqueKeys(std::marker::PhantomData))
}
