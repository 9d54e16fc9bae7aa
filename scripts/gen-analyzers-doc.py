#!/usr/bin/env python3
"""Writes docs/analyzers.md from the code catalog, the fixtures and the analyzer itself.

Every IST code of istioctl's catalog is listed with its status here; every code strait reports
gets the fixture that shows it and the message it prints. Run from the repository root after
changing the catalog or fixtures:  python3 scripts/gen-analyzers-doc.py
"""
import json, os, re, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATALOG = os.path.join(ROOT, 'crates/strait-analyze/src/catalog.rs')
FIXTURES = os.path.join(ROOT, 'crates/strait-analyze/tests/fixtures')
# The binary whose messages the examples show (STRAIT_BIN overrides, e.g. a debug build).
STRAIT = os.environ.get('STRAIT_BIN') or os.path.join(ROOT, 'target/release/strait')

# istioctl's whole catalog: code -> (name, level). Codes strait does not report need a status.
ISTIO = {
 'IST0001': ('InternalError', 'Error'), 'IST0002': ('Deprecated', 'Warning'), 'IST0101': ('ReferencedResourceNotFound', 'Error'),
 'IST0102': ('NamespaceNotInjected', 'Info'), 'IST0103': ('PodMissingProxy', 'Warning'), 'IST0106': ('SchemaValidationError', 'Error'),
 'IST0107': ('MisplacedAnnotation', 'Warning'), 'IST0108': ('UnknownAnnotation', 'Warning'), 'IST0109': ('ConflictingMeshGatewayVirtualServiceHosts', 'Error'),
 'IST0110': ('ConflictingSidecarWorkloadSelectors', 'Error'), 'IST0111': ('MultipleSidecarsWithoutWorkloadSelectors', 'Error'),
 'IST0112': ('VirtualServiceDestinationPortSelectorRequired', 'Error'), 'IST0116': ('DeploymentAssociatedToMultipleServices', 'Warning'),
 'IST0118': ('PortNameIsNotUnderNamingConvention', 'Info'), 'IST0123': ('NamespaceMultipleInjectionLabels', 'Warning'),
 'IST0125': ('InvalidAnnotation', 'Warning'), 'IST0126': ('UnknownMeshNetworksServiceRegistry', 'Error'), 'IST0127': ('NoMatchingWorkloadsFound', 'Warning'),
 'IST0128': ('NoServerCertificateVerificationDestinationLevel', 'Warning'), 'IST0129': ('NoServerCertificateVerificationPortLevel', 'Warning'),
 'IST0130': ('VirtualServiceUnreachableRule', 'Warning'), 'IST0131': ('VirtualServiceIneffectiveMatch', 'Info'),
 'IST0132': ('VirtualServiceHostNotFoundInGateway', 'Warning'), 'IST0133': ('SchemaWarning', 'Warning'), 'IST0134': ('ServiceEntryAddressesRequired', 'Warning'),
 'IST0135': ('DeprecatedAnnotation', 'Info'), 'IST0136': ('AlphaAnnotation', 'Info'), 'IST0137': ('DeploymentConflictingPorts', 'Warning'),
 'IST0138': ('GatewayDuplicateCertificate', 'Warning'), 'IST0139': ('InvalidWebhook', 'Error'), 'IST0140': ('IngressRouteRulesNotAffected', 'Warning'),
 'IST0141': ('InsufficientPermissions', 'Error'), 'IST0142': ('UnsupportedKubernetesVersion', 'Error'), 'IST0143': ('LocalhostListener', 'Error'),
 'IST0144': ('InvalidApplicationUID', 'Warning'), 'IST0145': ('ConflictingGateways', 'Error'), 'IST0146': ('ImageAutoWithoutInjectionWarning', 'Warning'),
 'IST0147': ('ImageAutoWithoutInjectionError', 'Error'), 'IST0148': ('NamespaceInjectionEnabledByDefault', 'Info'),
 'IST0149': ('JwtClaimBasedRoutingWithoutRequestAuthN', 'Error'), 'IST0150': ('ExternalNameServiceTypeInvalidPortName', 'Warning'),
 'IST0151': ('EnvoyFilterUsesRelativeOperation', 'Warning'), 'IST0152': ('EnvoyFilterUsesReplaceOperationIncorrectly', 'Error'),
 'IST0153': ('EnvoyFilterUsesAddOperationIncorrectly', 'Error'), 'IST0154': ('EnvoyFilterUsesRemoveOperationIncorrectly', 'Error'),
 'IST0155': ('EnvoyFilterUsesRelativeOperationWithProxyVersion', 'Warning'), 'IST0156': ('UnsupportedGatewayAPIVersion', 'Error'),
 'IST0157': ('InvalidTelemetryProvider', 'Warning'), 'IST0158': ('PodsIstioProxyImageMismatchInNamespace', 'Warning'),
 'IST0159': ('ConflictingTelemetryWorkloadSelectors', 'Error'), 'IST0160': ('MultipleTelemetriesWithoutWorkloadSelectors', 'Error'),
 'IST0161': ('InvalidGatewayCredential', 'Error'), 'IST0162': ('GatewayPortNotDefinedOnService', 'Warning'),
 'IST0163': ('InvalidExternalControlPlaneConfig', 'Warning'), 'IST0164': ('ExternalControlPlaneAddressIsNotAHostname', 'Info'),
 'IST0165': ('ReferencedInternalGateway', 'Warning'), 'IST0166': ('IneffectiveSelector', 'Warning'), 'IST0167': ('IneffectivePolicy', 'Warning'),
 'IST0168': ('UnknownUpgradeCompatibility', 'Warning'), 'IST0169': ('UpdateIncompatibility', 'Warning'),
 'IST0170': ('MultiClusterInconsistentService', 'Warning'), 'IST0171': ('NegativeConditionStatus', 'Warning'),
 'IST0172': ('FutureUnsupportedGatewayAPIVersion', 'Warning'), 'IST0173': ('DestinationRuleSubsetNotSelectPods', 'Error'),
 'IST0174': ('UnknownDestinationRuleHost', 'Warning'), 'IST0175': ('JwksUriFetchUnrestricted', 'Warning'),
 'IST0176': ('GatewayAPICRDVersionBelowMinimum', 'Warning'), 'IST0177': ('ConflictingServiceEntryProtocol', 'Warning'),
}
NOT_DONE = {
 'IST0001': 'not applicable: istioctl reserves it for failures inside its own toolchain; strait reports its own input problems as STR0001–STR0016.',
 'IST0136': 'not applicable: emitted only by `istioctl x precheck` (feature maturity of annotations), not by analyze.',
 'IST0141': 'not applicable: precheck of the installing user\'s RBAC against a live API server.',
 'IST0142': 'not applicable: precheck of a live cluster\'s Kubernetes version.',
 'IST0143': 'not applicable: defined but never emitted by istioctl since its precheck was removed.',
 'IST0156': 'not applicable: precheck of the Gateway API CRDs installed in a live cluster.',
 'IST0168': 'not applicable: defined but never emitted by istioctl.',
 'IST0169': 'not applicable: precheck across Istio versions (`--from-version`).',
 'IST0172': 'not applicable: precheck of the Gateway API CRDs installed in a live cluster.',
}

def catalog():
    out = []
    for m in re.finditer(r'^\s*((?:IST|STR)\d{4}), "([^"]+)", (\w+), "((?:[^"\\]|\\.)*)";', open(CATALOG).read(), re.M):
        out.append((m.group(1), m.group(2), m.group(3), m.group(4).replace('\\"', '"')))
    return out

def analyzers():
    listing = subprocess.run([STRAIT, 'analyze', '-L'], capture_output=True, text=True, check=True).stdout
    owners, current = {}, None
    for line in listing.splitlines():
        if not line.startswith(' '):
            current = line.split()[0]
        else:
            owners.setdefault(line.split()[0], []).append(current)
    return owners

def header(fires):
    for root, _, files in sorted(os.walk(fires)):
        for f in sorted(files):
            if f.endswith(('.yaml', '.yml')):
                first = open(os.path.join(root, f), errors='replace').read().splitlines()
                lines = []
                for l in first:
                    if l.strip() == '#':
                        break
                    if l.startswith('#'):
                        lines.append(l.lstrip('# ').strip())
                    else:
                        break
                if lines:
                    return ' '.join(lines)
    return ''

def example(code):
    fires = os.path.join(FIXTURES, code, 'fires')
    r = subprocess.run([STRAIT, 'analyze', fires, '-o', 'json', '-q'], capture_output=True, text=True)
    for f in json.loads(r.stdout)['findings']:
        if f['code'] == code:
            src = f.get('source') or {}
            where = os.path.relpath(src.get('file', fires), fires) if src.get('file') else ''
            if src.get('line'):
                where += f":{src['line']}:{src['column']}"
            # Paths inside a message ("first at FILE:LINE") are shown as the location is.
            return where, f['message'].replace(fires + os.sep, '')
    raise SystemExit(f'{code}: its fires fixture does not report it')

def main():
    cat = catalog()
    codes = {c[0]: c for c in cat}
    owners = analyzers()
    out = ['# Analyzer codes', '',
           'Every code `strait analyze` can report, generated by `scripts/gen-analyzers-doc.py` from',
           'the code catalog (`crates/strait-analyze/src/catalog.rs`) and the fixtures',
           '(`crates/strait-analyze/tests/fixtures/<CODE>/`): each code has a `fires/` input that',
           'reports it and a `silent/` input, the corrected version, that does not. The examples below',
           'are the messages strait prints for the `fires/` input.', '',
           'Where istioctl has a check, strait uses its code and level. Unlike `istioctl analyze` on files,',
           'every check runs from files: Services, Pods, Namespaces, Secrets and the pod templates of',
           'Deployments, StatefulSets and DaemonSets in manifests are first-class inputs.', '',
           'The input is the whole world, as a cluster is to istioctl: a reference to something it does',
           'not hold (a gateway pod, a Secret, a service, a workload) does not exist and is reported at',
           'its code\'s level. With `--partial` (the input is part of a mesh) those findings are Info.', '',
           '## IST codes (istioctl\'s catalog)', '',
           '| code | name | level | status | analyzer |', '|---|---|---|---|---|']
    for code, (name, level) in ISTIO.items():
        if code in codes:
            out.append(f'| [{code}](#{code.lower()}) | {name} | {level} | done | {", ".join(owners.get(code, []))} |')
        else:
            status = NOT_DONE[code]
            out.append(f'| {code} | {name} | {level} | {status} | |')
    out += ['', '## STR codes (strait\'s own)', '',
            '| code | name | level | what |', '|---|---|---|---|']
    for code, name, level, summary in cat:
        if code.startswith('STR'):
            out.append(f'| [{code}](#{code.lower()}) | {name} | {level} | {summary} |')
    out += ['', 'STR0001–STR0005 at level Error are input errors: they make the exit code 2. Every other',
            'finding (a symlink loop, a Helm expression in a rendered value) counts against',
            '`--failure-threshold`.', '', '## Examples', '']
    for code, name, level, summary in cat:
        where, message = example(code)
        desc = header(os.path.join(FIXTURES, code, 'fires'))
        out += [f'### {code}', '', f'**{name}** ({level}). {summary}', '']
        if desc:
            out += [f'Fixture: {desc} (`tests/fixtures/{code}/fires`)', '']
        out += ['```', f'{where}: {level} [{code}] {message}', '```', '']
    open(os.path.join(ROOT, 'docs/analyzers.md'), 'w').write('\n'.join(out).rstrip() + '\n')

if __name__ == '__main__':
    main()
