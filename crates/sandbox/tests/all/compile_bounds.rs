//! Compiling hostile input cannot exhaust the host: modules past the bounds are refused before
//! any compiler sees them (see docs/sandbox.md for why bounds, not a compile subprocess).

use covenant_sandbox::{LoadError, Refusal, Strategy};
use wasm_encoder::{CodeSection, Function, FunctionSection, Instruction, Module, TypeSection};

use crate::sandbox;

/// A module with `functions` functions, the first with `body_ops` pairs of `i32.const 0; drop`.
fn generated(functions: u32, body_ops: u32) -> Vec<u8> {
    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([], []);
    module.section(&types);
    let mut funcs = FunctionSection::new();
    for _ in 0..functions {
        funcs.function(0);
    }
    module.section(&funcs);
    let mut code = CodeSection::new();
    for i in 0..functions {
        let mut f = Function::new([]);
        if i == 0 {
            for _ in 0..body_ops {
                f.instruction(&Instruction::I32Const(0));
                f.instruction(&Instruction::Drop);
            }
        }
        f.instruction(&Instruction::End);
        code.function(&f);
    }
    module.section(&code);
    module.finish()
}

#[test]
fn a_giant_function_is_refused_before_compilation() {
    // 600 000 pairs of 3 bytes: a 1.8 MiB function body.
    let wasm = generated(1, 600_000);
    for strategy in Strategy::ALL {
        // Its own sandbox: the shared ones compile for other tests at the same time.
        let sandbox =
            covenant_sandbox::Sandbox::new(covenant_sandbox::SandboxConfig::new(strategy)).unwrap();
        let err = sandbox.load(&wasm).unwrap_err();
        let LoadError::Refused(refused) = &err else {
            panic!("{err}")
        };
        assert!(
            matches!(&refused.reasons[0], Refusal::Bound { what, .. } if what == "function 0 body bytes"),
            "{err}"
        );
        assert!(
            err.to_string().contains("exceeds the limit of 1048576"),
            "{err}"
        );
        assert_eq!(sandbox.stats().compiled, 0, "the compiler never saw it");
    }
}

#[test]
fn too_many_functions_are_refused_before_compilation() {
    let wasm = generated(100_001, 0);
    for strategy in Strategy::ALL {
        let err = sandbox(strategy).load(&wasm).unwrap_err();
        assert!(
            err.to_string()
                .contains("functions: 100001 exceeds the limit of 100000"),
            "{err}"
        );
    }
}

#[test]
fn a_module_past_the_size_bound_is_not_even_parsed() {
    let bounds = covenant_sandbox::ModuleBounds {
        max_module_bytes: 1024,
        ..Default::default()
    };
    let wasm = generated(1, 1_000);
    let err =
        covenant_sandbox::check::check_module(&wasm, &bounds, &Default::default()).unwrap_err();
    assert_eq!(err.reasons.len(), 1);
    assert!(err.to_string().contains("module bytes"), "{err}");
}
