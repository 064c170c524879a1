using Lockstep.Backends.Managed;
using Lockstep.Configuration;
using Lockstep.Conformance;
using Lockstep.Conformance.Reference;

namespace Lockstep.Tests;

/// <summary>The managed backend (im2col + the configured GEMM) against the naive loop oracle.</summary>
public sealed class ManagedVsNaiveConformance() : BackendConformance(new ManagedBackendFactory().Create(new LockstepOptions()), new NaiveBackend());

/// <summary>The managed backend's gradients against central differences.</summary>
public sealed class ManagedGradientChecks() : GradientChecks(new ManagedBackendFactory().Create(new LockstepOptions()));

/// <summary>The notes' FC→CONV conversion on the managed backend.</summary>
public sealed class ManagedFcToConv() : FcToConvConformance(new ManagedBackendFactory().Create(new LockstepOptions()));

/// <summary>The managed backend's destination overloads, written natively, against its allocating ones.</summary>
public sealed class ManagedDestinations() : DestinationConformance(new ManagedBackendFactory().Create(new LockstepOptions()));
