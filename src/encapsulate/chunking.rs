//! Chunking: which content objects go in which layer, so that a change to one component (a
//! package, the kernel) changes one layer or a few.
//!
//! # Components
//!
//! Every content object belongs to one component, decided by the first path (in walk order)
//! that names it:
//! - `pkg:<name>` when a package database lists the path: dpkg's
//!   `usr/lib/sysimage/dpkg/info/<name>[:<arch>].list` or `var/lib/dpkg/info/…`, or the rpm
//!   database in `usr/lib/sysimage/rpm`, `usr/share/rpm` or `var/lib/rpm` (read with the `rpm`
//!   command). Paths are mapped the way the commit stores them: `/etc` → `usr/etc`, `/bin` →
//!   `usr/bin` when `/bin` is a symlink. dpkg's own files of a package in `info/` (`.list`,
//!   `.md5sums`, …) belong to it too.
//! - none for the rest of a package database (dpkg's `status`, `rpmdb.sqlite`): it changes
//!   with every package, so it goes in the commit layer, which changes every time anyway.
//! - `dir:<directory>` otherwise: the parent directory cut to three levels (`usr/bin`,
//!   `usr/lib/modules`, `usr/share/doc`), `dir:/` for top-level files.
//!
//! # Packing
//!
//! With `N` layers allowed, layer 1 is the commit layer and `N-1` hold components. Without a
//! previous build, the largest components get a layer each and the rest are spread over a few
//! shared layers (a quarter of the layers, at least one) by a hash of their name, so adding or
//! removing a small component disturbs only its own shared layer. With a previous build (its
//! layers' `ostree.components` annotations), every previous layer keeps its components in the
//! same order; components that disappeared drop out, new ones go to one new layer (or the
//! smallest layer when there is no room).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;

use ostree::gio::prelude::*;
use sha2::{Digest, Sha256};

use crate::ostree::commit::{self, CommitError, Walk};
use crate::ostree::csum::Csum;

/// Layer annotation listing the components a layer holds (as ostree-rs-ext).
pub use crate::ostree::keys::COMPONENTS_ANNOTATION;
/// Separates component names in the `ostree.components` annotation.
pub const COMPONENT_SEPARATOR: char = ',';

const DPKG_INFO_DIRS: &[&str] = &["usr/lib/sysimage/dpkg/info", "var/lib/dpkg/info"];
/// Where commits keep the rpm database: rpm ≥ 4.17 and rpm-ostree, older rpm-ostree, plain.
const RPMDB_DIRS: &[&str] = &["usr/lib/sysimage/rpm", "usr/share/rpm", "var/lib/rpm"];
/// Package databases: what in them no package owns goes in the commit layer.
const PACKAGE_DB_DIRS: &[&str] = &[
    "usr/lib/sysimage/dpkg",
    "var/lib/dpkg",
    "usr/lib/sysimage/rpm",
    "usr/share/rpm",
    "var/lib/rpm",
];
const MERGED_USR: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

#[derive(Debug, Clone, PartialEq, Eq)]
/// A package (or directory group) and the content objects it owns.
pub struct Component {
    /// Its name (the package's, or a directory's).
    pub name: String,
    /// Checksums of its content objects.
    pub objects: BTreeSet<Csum>,
    /// Their total size in bytes.
    pub size: u64,
}

/// One planned content layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerPlan {
    /// The components in the layer.
    pub components: Vec<String>,
    /// Their content objects.
    pub objects: BTreeSet<Csum>,
    /// Their total size in bytes.
    pub size: u64,
}

impl LayerPlan {
    /// A short description for the image history.
    pub fn description(&self) -> String {
        match self.components.as_slice() {
            [one] => one.clone(),
            many => format!("{} components", many.len()),
        }
    }
}

/// The package database's view: commit path → package name, from dpkg's lists and the rpm
/// database (both, when a commit somehow has both; the first owner listed wins).
pub fn package_owners(
    repo: &ostree::Repo,
    walk: &Walk,
) -> Result<HashMap<String, String>, CommitError> {
    let all_paths: HashSet<&str> = walk
        .content
        .values()
        .flatten()
        .map(String::as_str)
        .collect();
    let mut owners = HashMap::new();
    let mut packages = dpkg_packages(repo, walk, &all_paths)?;
    packages.extend(rpm_packages(repo, walk)?);
    for (pkg, paths) in packages {
        for p in paths {
            if let Some(q) = commit_path(&p, &all_paths) {
                owners.entry(q).or_insert_with(|| pkg.clone());
            }
        }
    }
    Ok(owners)
}

/// Where a path as a package database names it (`/etc/foo`, `/bin/sh`) is in the commit:
/// `/etc` is stored as `usr/etc`, and `/bin` & co. go through `usr/` when the commit has them
/// as symlinks (merged /usr) and not the path itself. `None` for the root itself.
pub fn commit_path(pkg_path: &str, all_paths: &HashSet<&str>) -> Option<String> {
    let mut q = pkg_path.trim_start_matches('/').to_string();
    if q.is_empty() || q == "." {
        return None;
    }
    if q == "etc" || q.starts_with("etc/") {
        q = format!("usr/{q}");
    }
    let first = q.split('/').next().unwrap_or_default();
    if MERGED_USR.contains(&first) && all_paths.contains(first) && !all_paths.contains(q.as_str()) {
        q = format!("usr/{q}");
    }
    Some(q)
}

/// dpkg's packages and their paths, from the `.list` files; a package's own files in
/// `info/` (`.list`, `.md5sums`, …) belong to it too.
fn dpkg_packages(
    repo: &ostree::Repo,
    walk: &Walk,
    all_paths: &HashSet<&str>,
) -> Result<Vec<(String, Vec<String>)>, CommitError> {
    let mut lists: Vec<(&Csum, &str)> = Vec::new();
    for (csum, paths) in &walk.content {
        for p in paths {
            let Some((dir, file)) = p.rsplit_once('/') else {
                continue;
            };
            if DPKG_INFO_DIRS.contains(&dir) && file.ends_with(".list") {
                lists.push((csum, p));
            }
        }
    }
    lists.sort_by_key(|(_, p)| *p);
    let mut packages = Vec::new();
    for (csum, p) in lists {
        let (dir, file) = p.rsplit_once('/').unwrap_or_default();
        let stem = file.trim_end_matches(".list");
        let pkg = stem.split(':').next().unwrap_or(stem).to_string();
        let obj = commit::load_content(repo, csum)?;
        let Some(stream) = obj.stream else { continue };
        let mut text = String::new();
        if stream.into_read().read_to_string(&mut text).is_err() {
            continue;
        }
        let mut paths: Vec<String> = text.lines().map(String::from).collect();
        let own_prefix = format!("{dir}/{stem}.");
        paths.extend(
            all_paths
                .iter()
                .filter(|o| o.starts_with(&own_prefix))
                .map(|o| format!("/{o}")),
        );
        packages.push((pkg, paths));
    }
    Ok(packages)
}

/// rpm's packages and their paths, read with `rpm --dbpath` from a copy of the commit's rpm
/// database (whatever backend: sqlite, bdb, ndb; the `rpm` package of Debian reads them
/// all). The database files themselves go in the commit layer (see [`components`]). Without an `rpm` command, or when it cannot read the database, this
/// warns and returns nothing, so the content is grouped by directory instead.
fn rpm_packages(
    repo: &ostree::Repo,
    walk: &Walk,
) -> Result<Vec<(String, Vec<String>)>, CommitError> {
    let Some((dbdir, files)) = RPMDB_DIRS.iter().find_map(|dir| {
        let files: Vec<(&Csum, &str)> = walk
            .content
            .iter()
            .flat_map(|(csum, paths)| paths.iter().map(move |p| (csum, p.as_str())))
            .filter(|(_, p)| p.rsplit_once('/').map(|(d, _)| d) == Some(*dir))
            .collect();
        (!files.is_empty()).then_some((*dir, files))
    }) else {
        return Ok(Vec::new());
    };
    let copy = match tempfile::Builder::new()
        .prefix("ostree-container-rpmdb-")
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("copying the rpm database: {e}; grouping by directory instead");
            return Ok(Vec::new());
        }
    };
    for (csum, path) in files {
        let obj = commit::load_content(repo, csum)?;
        let Some(stream) = obj.stream else { continue };
        let name = path.rsplit('/').next().unwrap_or(path);
        let copied = std::fs::File::create(copy.path().join(name))
            .and_then(|mut f| std::io::copy(&mut stream.into_read(), &mut f));
        if let Err(e) = copied {
            tracing::warn!("copying {path} out of the commit: {e}; grouping by directory instead");
            return Ok(Vec::new());
        }
    }
    let out = std::process::Command::new("rpm")
        .arg("--dbpath")
        .arg(copy.path())
        .args(["-qa", "--qf", RPM_QUERY_FORMAT])
        .output();
    match out {
        Ok(out) if out.status.success() => {
            Ok(parse_rpm_query(&String::from_utf8_lossy(&out.stdout)))
        }
        Ok(out) => {
            tracing::warn!(
                "rpm could not read the database in /{dbdir}: {}; grouping by directory instead",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            Ok(Vec::new())
        }
        Err(e) => {
            tracing::warn!(
                "the commit has an rpm database (/{dbdir}), but running rpm failed ({e}); \
                 install rpm to get a layer per package; grouping by directory instead"
            );
            Ok(Vec::new())
        }
    }
}

/// One `@@NAME` line per package, then its files, one a line.
const RPM_QUERY_FORMAT: &str = "@@%{NAME}\\n[%{FILENAMES}\\n]";

/// Parse the output of `rpm -qa --qf RPM_QUERY_FORMAT`, packages sorted by name (so that the
/// first owner of a shared path does not depend on rpm's order).
pub fn parse_rpm_query(out: &str) -> Vec<(String, Vec<String>)> {
    let mut packages: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in out.lines() {
        if let Some(name) = line.strip_prefix("@@") {
            // Several versions or architectures of one name are one component.
            packages.entry(name.to_string()).or_default();
            current = Some(name.to_string());
        } else if let Some(name) = &current {
            // rpm prints "(none)" for a package without files.
            if !line.is_empty() && line != "(none)" {
                packages
                    .get_mut(name)
                    .expect("entry made above")
                    .push(line.to_string());
            }
        }
    }
    packages.into_iter().collect()
}

/// Whether a path is a package database's own file (dpkg's `status`, `rpmdb.sqlite`).
pub fn is_package_database(path: &str) -> bool {
    PACKAGE_DB_DIRS.iter().any(|d| {
        path.strip_prefix(d)
            .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// The component of an unowned path: its directory, cut to three levels.
pub fn dir_component(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() <= 1 {
        return "dir:/".to_string();
    }
    let dir = &parts[..parts.len() - 1];
    format!("dir:{}", dir[..dir.len().min(3)].join("/"))
}

/// Group the commit's content objects into components. Unowned package-database files are in
/// none: they go in the commit layer with whatever else no layer takes.
pub fn components(
    walk: &Walk,
    owners: &HashMap<String, String>,
    sizes: &BTreeMap<Csum, u64>,
) -> Vec<Component> {
    let mut by_name: BTreeMap<String, Component> = BTreeMap::new();
    for (csum, paths) in &walk.content {
        let name = match paths.iter().find_map(|p| owners.get(p)) {
            Some(owner) => format!("pkg:{owner}"),
            // It changes whenever any package does, as the commit layer does: it goes there.
            None if is_package_database(&paths[0]) => continue,
            None => dir_component(&paths[0]),
        };
        let c = by_name.entry(name.clone()).or_insert_with(|| Component {
            name,
            objects: BTreeSet::new(),
            size: 0,
        });
        c.objects.insert(*csum);
        c.size += sizes.get(csum).copied().unwrap_or(0);
    }
    by_name.into_values().collect()
}

fn bucket(name: &str, n: usize) -> usize {
    let h = Sha256::digest(name.as_bytes());
    (u64::from_be_bytes(h[..8].try_into().expect("8 bytes")) % n as u64) as usize
}

fn plan_of(names: Vec<String>, by_name: &HashMap<&str, &Component>) -> LayerPlan {
    let mut p = LayerPlan {
        components: Vec::new(),
        objects: BTreeSet::new(),
        size: 0,
    };
    for n in names {
        if let Some(c) = by_name.get(n.as_str()) {
            p.objects.extend(c.objects.iter().cloned());
            p.size += c.size;
            p.components.push(n);
        }
    }
    p
}

/// Pack components into at most `max_layers - 1` content layers (see the module docs).
/// `prior`: the previous build's content layers, each a list of component names.
pub fn pack(comps: &[Component], max_layers: u32, prior: Option<&[Vec<String>]>) -> Vec<LayerPlan> {
    let n = max_layers.saturating_sub(1) as usize;
    if n == 0 || comps.is_empty() {
        return Vec::new();
    }
    let by_name: HashMap<&str, &Component> = comps.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut groups: Vec<Vec<String>> = Vec::new();
    if let Some(prior) = prior {
        let mut placed = HashSet::new();
        for layer in prior {
            let kept: Vec<String> = layer
                .iter()
                .filter(|c| {
                    by_name.contains_key(c.as_str()) && placed.insert(c.as_str().to_string())
                })
                .cloned()
                .collect();
            if !kept.is_empty() {
                groups.push(kept);
            }
        }
        while groups.len() > n {
            let last = groups.pop().expect("non-empty");
            groups.last_mut().expect("n >= 1").extend(last);
        }
        let new: Vec<String> = comps
            .iter()
            .filter(|c| !placed.contains(&c.name))
            .map(|c| c.name.clone())
            .collect();
        if !new.is_empty() {
            if groups.len() < n {
                groups.push(new);
            } else {
                let smallest = (0..groups.len())
                    .min_by_key(|&i| plan_of(groups[i].clone(), &by_name).size)
                    .expect("n >= 1");
                groups[smallest].extend(new);
            }
        }
    } else {
        let mut sorted: Vec<&Component> = comps.iter().collect();
        sorted.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.name.cmp(&b.name)));
        if sorted.len() <= n {
            groups = sorted.iter().map(|c| vec![c.name.clone()]).collect();
        } else {
            let shared = (n / 4).max(1);
            let own = n - shared;
            groups = sorted[..own].iter().map(|c| vec![c.name.clone()]).collect();
            let mut buckets = vec![Vec::new(); shared];
            let mut rest: Vec<&Component> = sorted[own..].to_vec();
            rest.sort_by(|a, b| a.name.cmp(&b.name));
            for c in rest {
                buckets[bucket(&c.name, shared)].push(c.name.clone());
            }
            groups.extend(buckets.into_iter().filter(|b| !b.is_empty()));
        }
    }
    groups.into_iter().map(|g| plan_of(g, &by_name)).collect()
}

/// Parse a previous manifest's layer annotations into component lists (content layers only).
pub fn prior_layout(manifest: &oci_spec::image::ImageManifest) -> Option<Vec<Vec<String>>> {
    let layers: Vec<Vec<String>> = manifest
        .layers()
        .iter()
        .skip(1)
        .filter_map(|l| {
            let a = l.annotations().as_ref()?.get(COMPONENTS_ANNOTATION)?;
            Some(
                a.split(COMPONENT_SEPARATOR)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
            )
        })
        .collect();
    (!layers.is_empty()).then_some(layers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comp(name: &str, size: u64) -> Component {
        Component {
            name: name.into(),
            objects: [crate::ostree::repo::sha256(name.as_bytes())].into(),
            size,
        }
    }

    #[test]
    fn package_paths_as_the_commit_stores_them() {
        let all: HashSet<&str> = ["bin", "usr/bin/sh", "lib64", "usr/etc/fstab"].into();
        assert_eq!(
            commit_path("/etc/fstab", &all).as_deref(),
            Some("usr/etc/fstab")
        );
        assert_eq!(commit_path("/bin/sh", &all).as_deref(), Some("usr/bin/sh"));
        // /bin itself is the symlink, owned as it is.
        assert_eq!(commit_path("/bin", &all).as_deref(), Some("bin"));
        // No /sbin symlink in this commit: the path stays.
        assert_eq!(
            commit_path("/sbin/init", &all).as_deref(),
            Some("sbin/init")
        );
        assert_eq!(commit_path("/", &all), None);
        assert_eq!(commit_path("/.", &all), None);
    }

    #[test]
    fn rpm_query_output() {
        let out = "@@zlib\n/usr/lib64/libz.so.1\n/usr/share/doc/zlib\n\
                   @@gpg-pubkey\n(none)\n\
                   @@glibc\n/usr/lib64/libc.so.6\n\
                   @@glibc\n/usr/lib/libc.so.6\n";
        let p = parse_rpm_query(out);
        let names: Vec<&str> = p.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["glibc", "gpg-pubkey", "zlib"]);
        assert_eq!(p[0].1, ["/usr/lib64/libc.so.6", "/usr/lib/libc.so.6"]);
        assert!(p[1].1.is_empty());
        assert_eq!(p[2].1, ["/usr/lib64/libz.so.1", "/usr/share/doc/zlib"]);
    }

    #[test]
    fn dir_components() {
        assert_eq!(dir_component("usr/bin/sh"), "dir:usr/bin");
        assert_eq!(
            dir_component("usr/lib/modules/6.1/vmlinuz"),
            "dir:usr/lib/modules"
        );
        assert_eq!(dir_component("usr/share/doc/a/b/c"), "dir:usr/share/doc");
        assert_eq!(dir_component("top"), "dir:/");
        assert!(is_package_database("usr/lib/sysimage/rpm/rpmdb.sqlite"));
        assert!(is_package_database("var/lib/dpkg/status"));
        assert!(!is_package_database("usr/lib/sysimage/rpmfoo"));
        assert!(!is_package_database("usr/lib/sysimage/dpkg"));
    }

    #[test]
    fn few_components_one_layer_each() {
        let c = vec![comp("a", 1), comp("b", 3), comp("c", 2)];
        let p = pack(&c, 10, None);
        let names: Vec<_> = p.iter().map(|l| l.components.join(",")).collect();
        assert_eq!(names, ["b", "c", "a"]);
        assert!(pack(&c, 1, None).is_empty());
    }

    #[test]
    fn many_components_bounded_and_stable() {
        let c: Vec<_> = (0..100).map(|i| comp(&format!("p{i:03}"), i)).collect();
        let p = pack(&c, 9, None);
        assert!(p.len() <= 8);
        let all: usize = p.iter().map(|l| l.components.len()).sum();
        assert_eq!(all, 100);
        // Removing a small component changes only the shared layer that held it.
        let c2: Vec<_> = c.iter().filter(|x| x.name != "p005").cloned().collect();
        let p2 = pack(&c2, 9, None);
        let changed = p.iter().filter(|l| !p2.contains(l)).count();
        assert_eq!(changed, 1);
    }

    #[test]
    fn prior_layout_kept() {
        let c = vec![comp("a", 1), comp("b", 100), comp("new", 50)];
        let prior = vec![
            vec!["a".to_string(), "gone".to_string()],
            vec!["b".to_string()],
        ];
        let p = pack(&c, 10, Some(&prior));
        let names: Vec<_> = p.iter().map(|l| l.components.join(",")).collect();
        assert_eq!(names, ["a", "b", "new"]);
        let p = pack(&c, 3, Some(&prior));
        let names: Vec<_> = p.iter().map(|l| l.components.join(",")).collect();
        assert_eq!(names, ["a,new", "b"]);
    }
}
