// AWS Signature Version 4. Implemented in issue 2 (see Signer.swift).
