//! Every example in docs/envoy loads into the filter, so the examples cannot drift from
//! the configuration schema.

use std::path::PathBuf;

use envoy_host::{Envoy, StartError};

use crate::fixture::options;

/// Returns the plugin configurations in a YAML file: the blocks under `value: |` (Envoy's
/// `StringValue`) and under `pluginConfig:` (Istio's `WasmPlugin`), dedented.
fn plugin_configs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut blocks = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let key = line.trim();
        if key != "value: |" && key != "pluginConfig:" {
            continue;
        }
        let key_indent = line.len() - line.trim_start().len();
        let body: Vec<&str> = lines[index + 1..]
            .iter()
            .take_while(|next| next.trim().is_empty() || next.len() - next.trim_start().len() > key_indent)
            .copied()
            .collect();
        let body_indent = body.iter().filter(|next| !next.trim().is_empty()).map(|next| next.len() - next.trim_start().len()).min().unwrap_or(0);
        let text: Vec<&str> = body.iter().map(|next| next.get(body_indent..).unwrap_or("")).collect();
        blocks.push(text.join("\n"));
    }
    blocks
}

fn examples() -> Vec<PathBuf> {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/envoy");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", directory.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn plugin_config_extracted() {
    let yaml = "a:\n  value: |\n    {\n      \"x\": 1\n    }\n  next: 2\nspec:\n  pluginConfig:\n    { \"y\": [\n      2 ] }\n";
    assert_eq!(plugin_configs(yaml), ["{\n  \"x\": 1\n}", "{ \"y\": [\n  2 ] }"]);
}

#[test]
fn every_example_loads() {
    let files = examples();
    let names: Vec<String> = files.iter().filter_map(|path| path.file_name()).map(|name| name.to_string_lossy().into_owned()).collect();
    for expected in ["envoy.yaml", "discovery.yaml", "rules.yaml", "claim-headers.yaml", "local-jwks.yaml", "istio-wasmplugin.yaml"] {
        assert!(names.iter().any(|name| name == expected), "docs/envoy/{expected} is missing: {names:?}");
    }
    for path in files {
        let yaml = std::fs::read_to_string(&path).unwrap();
        let configs = plugin_configs(&yaml);
        assert_eq!(configs.len(), 1, "{}: expected one plugin configuration", path.display());
        let config: serde_json::Value = serde_json::from_str(&configs[0])
            .unwrap_or_else(|error| panic!("{}: the plugin configuration is not JSON: {error}", path.display()));
        match Envoy::start(options(&config, Default::default())) {
            Ok(envoy) => assert_eq!(envoy.failure(0), None, "{}", path.display()),
            Err(StartError::ConfigRejected { logs, .. }) => {
                panic!("{}: the filter rejected the configuration: {logs:?}", path.display())
            }
            Err(other) => panic!("{}: {other}", path.display()),
        }
    }
}
