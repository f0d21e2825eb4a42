"""Translate template.yaml (SAM) into the plain CloudFormation that CloudFormation would deploy.

cfn-lint on the SAM source misses what only exists after the transform: a dependency cycle
through an event's generated permission (bucket -> notification -> function -> bucket) lints
clean there and fails at deploy time. Linting the translated template catches it. Offline:
local CodeUri values are replaced by a placeholder S3 URI (what `sam package` would upload),
and no managed policy is looked up (the template names none by ARN).

usage: python sam_translate.py template.yaml > translated.json   (AWS_DEFAULT_REGION must be set)
"""

import json
import sys

from cfnlint.decode import decode
from samtranslator.translator.transform import transform

PLACEHOLDER_CODE = "s3://alga-placeholder-code/code.zip"


class NoManagedPolicies:
    """Policy loader for the translator: the template refers to no managed policy by name."""

    def load(self):
        return {}


def main(path: str) -> int:
    template, matches = decode(path)
    if matches:
        for m in matches:
            print(m, file=sys.stderr)
        return 1
    functions = [
        r for r in template.get("Resources", {}).values() if r.get("Type") == "AWS::Serverless::Function"
    ]
    glob = template.get("Globals", {}).get("Function", {})
    if "CodeUri" in glob:
        glob["CodeUri"] = PLACEHOLDER_CODE
    for fn in functions:
        if "CodeUri" in fn.get("Properties", {}):
            fn["Properties"]["CodeUri"] = PLACEHOLDER_CODE
    translated = transform(template, {}, NoManagedPolicies())
    json.dump(translated, sys.stdout, indent=1, default=str)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
