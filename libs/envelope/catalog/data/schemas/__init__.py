"""Package data of yibao.envelope.catalog (YAML files). A package only so that wheels include it."""
