//! The built-in instance catalogue: CPU units, the memory ECS registers on the ECS-optimized
//! AMI, and us-east-1 on-demand and typical Spot prices.
//!
//! Registered memory is derived from the instance's physical memory: the kernel and the
//! agent keep `min(physical/16, 512 MiB + 2% of physical)`, so an m5.large (8 GiB) registers
//! 7,680 MiB, as SPEC.md's example shows, and large instances keep about 2% (docs/simulator.md).
//! Spot prices are taken as 37% of on-demand, a typical us-east-1 discount.

use std::collections::BTreeMap;

/// One instance type.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceType {
    /// CPU units (1024 per vCPU).
    pub cpu: i64,
    /// Registered memory, MiB.
    pub memory: i64,
    /// On-demand $/hour.
    pub price: f64,
    /// Spot $/hour.
    pub spot_price: f64,
    /// `x86_64`, or `arm64` for Graviton (the `ecs.cpu-architecture` attribute).
    pub arch: &'static str,
}

/// Memory ECS registers for `physical_mib` of RAM.
pub fn registered_memory(physical_mib: i64) -> i64 {
    let keep = (physical_mib / 16).min(512 + physical_mib * 2 / 100);
    physical_mib - keep
}

fn add(map: &mut BTreeMap<String, InstanceType>, name: &str, vcpu: i64, gib: f64, price: f64) {
    let phys = (gib * 1024.0).round() as i64;
    // Graviton families have a `g` after the generation (m6g, c7g, r6gd); t4g too.
    let family = name.split('.').next().unwrap_or("");
    let graviton = family.len() >= 3 && family[2..].starts_with('g') || family.starts_with("t4g");
    map.insert(
        name.to_string(),
        InstanceType {
            cpu: vcpu * 1024,
            memory: registered_memory(phys),
            price,
            spot_price: (price * 0.37 * 10000.0).round() / 10000.0,
            arch: if graviton { "arm64" } else { "x86_64" },
        },
    );
}

/// The built-in catalogue.
pub fn builtin() -> BTreeMap<String, InstanceType> {
    let mut m = BTreeMap::new();
    let vcpus = |size: &str| -> i64 {
        match size {
            "medium" => 1,
            "large" => 2,
            "xlarge" => 4,
            s => s.trim_end_matches("xlarge").parse::<i64>().map_or(0, |n| n * 4),
        }
    };
    let intel = ["large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge"];
    let c5 = ["large", "xlarge", "2xlarge", "4xlarge", "9xlarge", "12xlarge", "18xlarge", "24xlarge"];
    let graviton = ["medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"];
    // (family, sizes, GiB per vCPU, $ per vCPU-hour in us-east-1)
    let families: [(&str, &[&str], f64, f64); 14] = [
        ("m5", &intel, 4.0, 0.048),
        ("m6i", &intel, 4.0, 0.048),
        ("m7i", &intel, 4.0, 0.0504),
        ("c5", &c5, 2.0, 0.0425),
        ("c6i", &intel, 2.0, 0.0425),
        ("c7i", &intel, 2.0, 0.044_625),
        ("r5", &intel, 8.0, 0.063),
        ("r6i", &intel, 8.0, 0.063),
        // Graviton (arm64).
        ("m6g", &graviton, 4.0, 0.0385),
        ("m7g", &graviton, 4.0, 0.0408),
        ("c6g", &graviton, 2.0, 0.034),
        ("c7g", &graviton, 2.0, 0.036_25),
        ("r6g", &graviton, 8.0, 0.0504),
        ("r7g", &graviton, 8.0, 0.053_55),
    ];
    for (fam, sizes, gib, per) in families {
        for size in sizes {
            let vcpu = vcpus(size);
            add(&mut m, &format!("{fam}.{size}"), vcpu, gib * vcpu as f64, per * vcpu as f64);
        }
    }
    for (size, vcpu, gib, price) in [
        ("medium", 2, 4.0, 0.0416),
        ("large", 2, 8.0, 0.0832),
        ("xlarge", 4, 16.0, 0.1664),
        ("2xlarge", 8, 32.0, 0.3328),
    ] {
        add(&mut m, &format!("t3.{size}"), vcpu, gib, price);
    }
    for (size, vcpu, gib, price) in
        [("medium", 1, 3.75, 0.067), ("large", 2, 7.5, 0.133), ("xlarge", 4, 15.0, 0.266), ("2xlarge", 8, 30.0, 0.532)]
    {
        add(&mut m, &format!("m3.{size}"), vcpu, gib, price);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_matches_the_spec_example() {
        let c = builtin();
        let m5 = &c["m5.large"];
        assert_eq!((m5.cpu, m5.memory), (2048, 7680));
        assert!((m5.price - 0.096).abs() < 1e-9);
        assert!((m5.spot_price - 0.0355).abs() < 0.001);
        for f in [
            "t3.medium",
            "m3.medium",
            "m5.8xlarge",
            "m6i.large",
            "m7i.xlarge",
            "c5.4xlarge",
            "c6i.large",
            "c7i.8xlarge",
            "r5.large",
            "r6i.8xlarge",
        ] {
            assert!(c.contains_key(f), "{f}");
        }
        assert!(c["r6i.8xlarge"].memory > 250_000);
        // Graviton and the larger sizes.
        assert_eq!(c["m6g.medium"].cpu, 1024);
        assert_eq!(c["m7g.16xlarge"].cpu, 64 * 1024);
        assert_eq!(c["c5.9xlarge"].cpu, 36 * 1024);
        assert_eq!(c["m5.24xlarge"].cpu, 96 * 1024);
        assert!((c["m6g.large"].price - 0.077).abs() < 1e-9);
        assert_eq!((c["c7g.large"].arch, c["c7i.large"].arch), ("arm64", "x86_64"));
    }
}
