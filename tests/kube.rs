//! Lab tests for the kubeadm and kubectl modules against the lab stand-ins (being written).
