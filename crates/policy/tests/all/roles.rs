//! Roles and capabilities derived from the example.

use std::collections::BTreeSet;

use covenant_policy::{Grant, Phase, Resource, Rights, Role, Subject, capabilities, roles};

use sha2::Digest;

use crate::fixture::example;

fn principal(name: &str) -> Subject {
    Subject::Principal(name.to_owned())
}

fn file(path: &str) -> Resource {
    Resource::File(path.to_owned())
}

#[test]
fn roles_follow_from_the_policy() {
    let table = roles(&example());
    let expected = vec![
        (
            "hospital-a".to_owned(),
            BTreeSet::from([Role::DataProvider, Role::ResultReader]),
        ),
        (
            "hospital-b".to_owned(),
            BTreeSet::from([Role::DataProvider, Role::ResultReader]),
        ),
        (
            "researcher".to_owned(),
            BTreeSet::from([Role::ProgramProvider, Role::ResultReader, Role::RunStarter]),
        ),
    ];
    assert_eq!(table, expected);
}

#[test]
fn a_principal_without_a_role_is_still_listed() {
    let mut policy = example();
    let mut auditor = policy.principals[0].clone();
    auditor.name = "auditor".to_owned();
    policy.principals.push(auditor);
    let table = roles(&policy);
    assert_eq!(table[3], ("auditor".to_owned(), BTreeSet::new()));
    assert!(capabilities(&policy).of(&principal("auditor")).is_empty());
}

#[test]
fn capabilities_of_the_example() {
    let caps = capabilities(&example());
    let upload = Rights::CREATE | Rights::WRITE;
    let grant = |resource, rights, phase| Grant {
        resource,
        rights,
        phase,
    };
    assert_eq!(
        caps.of(&principal("hospital-a")),
        [
            grant(file("/input/a.csv"), upload, Phase::BeforeRun),
            grant(file("/output/result.txt"), Rights::READ, Phase::AfterRun),
        ]
    );
    assert_eq!(
        caps.of(&principal("researcher")),
        [
            grant(Resource::Program, upload, Phase::BeforeRun),
            grant(Resource::Program, Rights::EXECUTE, Phase::BeforeRun),
            grant(file("/output/result.txt"), Rights::READ, Phase::AfterRun),
            grant(Resource::Stdout, Rights::READ, Phase::AfterRun),
        ]
    );
    assert_eq!(
        caps.of(&Subject::Program),
        [
            grant(file("/input/a.csv"), Rights::READ, Phase::DuringRun),
            grant(file("/input/b.csv"), Rights::READ, Phase::DuringRun),
            grant(file("/output/result.txt"), upload, Phase::DuringRun),
            grant(Resource::Stdout, Rights::WRITE, Phase::DuringRun),
            grant(Resource::Stderr, Rights::WRITE, Phase::DuringRun),
        ]
    );
    assert_eq!(caps.entries().len(), 4, "three principals and the program");
}

#[test]
fn nobody_reads_or_writes_what_is_not_theirs() {
    let caps = capabilities(&example());
    let a = principal("hospital-a");
    assert!(caps.allows(&a, &file("/input/a.csv"), Rights::WRITE, Phase::BeforeRun));
    assert!(
        !caps.allows(&a, &file("/input/a.csv"), Rights::READ, Phase::BeforeRun),
        "a provider cannot read back"
    );
    assert!(
        !caps.allows(&a, &file("/input/b.csv"), Rights::READ, Phase::AfterRun),
        "nor read others' inputs"
    );
    assert!(
        !caps.allows(&a, &file("/input/b.csv"), Rights::WRITE, Phase::BeforeRun),
        "nor write them"
    );
    assert!(
        !caps.allows(&a, &file("/input/a.csv"), Rights::WRITE, Phase::AfterRun),
        "no upload after the run"
    );
    assert!(
        !caps.allows(&a, &Resource::Stdout, Rights::READ, Phase::AfterRun),
        "stdout is the researcher's"
    );
    assert!(
        !caps.allows(
            &a,
            &file("/output/result.txt"),
            Rights::READ,
            Phase::DuringRun
        ),
        "results only after the run"
    );
    assert!(
        !caps.allows(&a, &Resource::Program, Rights::EXECUTE, Phase::BeforeRun),
        "not a starter"
    );
    assert!(
        !caps.allows(
            &Subject::Program,
            &file("/input/a.csv"),
            Rights::WRITE,
            Phase::DuringRun
        ),
        "inputs are read-only"
    );
    assert!(!caps.allows(
        &principal("mallory"),
        &file("/output/result.txt"),
        Rights::READ,
        Phase::AfterRun
    ));
    for (_, grants) in caps.entries() {
        assert!(
            grants.iter().all(|g| !g.rights.contains(Rights::LIST)),
            "nobody lists"
        );
    }
}

#[test]
fn certificate_info_for_people() {
    let valid = crate::fixture::valid_example();
    let der = valid.certificate_der("hospital-b").expect("declared");
    let info = covenant_policy::certificate_info(der).expect("parses");
    assert_eq!(info.subject, "CN=hospital-b");
    assert_eq!(
        covenant_policy::format_utc(info.not_after),
        "2040-01-01T00:00:00Z"
    );
    assert_eq!(
        info.fingerprint,
        <[u8; 32]>::from(sha2::Sha256::digest(der))
    );
    assert_eq!(valid.principal_with_certificate(der), Some("hospital-b"));
    assert_eq!(valid.certificate_der("mallory"), None);
    assert!(covenant_policy::certificate_info(b"junk").is_err());
}
