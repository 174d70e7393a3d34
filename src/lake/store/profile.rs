//! The AWS shared profile files (`~/.aws/credentials`, `~/.aws/config`), which object_store does
//! not read: the profile `AWS_PROFILE` names (else `default`) supplies the keys, session token,
//! region and endpoint that no `AWS_*` variable sets, as the AWS CLI does.

use std::path::PathBuf;

use object_store::aws::AmazonS3ConfigKey;

/// What the environment and profile files give the S3 client beyond `AWS_*` variables.
pub(super) struct Settings {
    /// Settings from the profile files, for keys no variable set.
    pub options: Vec<(AmazonS3ConfigKey, String)>,
    /// Whether any source of credentials was found (variables, profile, web identity,
    /// container or instance metadata, or unsigned requests asked for).
    pub has_credentials: bool,
}

/// Reads the profile files as the environment points at them.
pub(super) fn settings() -> Settings {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".to_string());
    let home = var("HOME").map(PathBuf::from);
    let file = |env: &str, name: &str| {
        var(env).map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    let read = |p: Option<PathBuf>| p.and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
    let credentials = read(file("AWS_SHARED_CREDENTIALS_FILE", "credentials"));
    let config = read(file("AWS_CONFIG_FILE", "config"));
    let config_section =
        if profile == "default" { "default".to_string() } else { format!("profile {profile}") };
    let from_profile = |key: &str| {
        section_value(&credentials, &profile, key).or_else(|| section_value(&config, &config_section, key))
    };
    let mut options = Vec::new();
    let mut has_credentials = var("AWS_ACCESS_KEY_ID").is_some();
    if !has_credentials
        && let (Some(id), Some(secret)) =
            (from_profile("aws_access_key_id"), from_profile("aws_secret_access_key"))
    {
        options.push((AmazonS3ConfigKey::AccessKeyId, id));
        options.push((AmazonS3ConfigKey::SecretAccessKey, secret));
        if let Some(token) = from_profile("aws_session_token") {
            options.push((AmazonS3ConfigKey::Token, token));
        }
        has_credentials = true;
    }
    if var("AWS_REGION").is_none()
        && var("AWS_DEFAULT_REGION").is_none()
        && let Some(region) = from_profile("region")
    {
        options.push((AmazonS3ConfigKey::Region, region));
    }
    if var("AWS_ENDPOINT_URL").is_none()
        && let Some(endpoint) = from_profile("endpoint_url")
    {
        options.push((AmazonS3ConfigKey::Endpoint, endpoint));
    }
    has_credentials |= [
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_METADATA_ENDPOINT",
    ]
    .iter()
    .any(|k| var(k).is_some())
        || var("AWS_SKIP_SIGNATURE").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    Settings { options, has_credentials }
}

/// `key`'s value in `[section]` of an INI text as the AWS files write it (`key = value`, `#` and
/// `;` comments); `None` when absent or empty.
fn section_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside
            && let Some((k, v)) = line.split_once('=')
            && k.trim().eq_ignore_ascii_case(key)
        {
            let v = v.trim();
            return (!v.is_empty()).then(|| v.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::section_value;

    #[test]
    fn values_come_from_the_named_section_only() {
        let text = "[default]\naws_access_key_id = AKIADEFAULT\n# note\n[profile ci]\nregion=ap-northeast-1\n\
                    aws_access_key_id = AKIACI\n[other]\nregion = eu-west-1\n";
        assert_eq!(section_value(text, "default", "aws_access_key_id").as_deref(), Some("AKIADEFAULT"));
        assert_eq!(section_value(text, "profile ci", "region").as_deref(), Some("ap-northeast-1"));
        assert_eq!(section_value(text, "profile ci", "aws_access_key_id").as_deref(), Some("AKIACI"));
        assert_eq!(section_value(text, "default", "region"), None);
        assert_eq!(section_value(text, "missing", "region"), None);
    }
}
