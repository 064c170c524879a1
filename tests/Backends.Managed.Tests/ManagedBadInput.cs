using Lockstep.Backends.Managed;
using Lockstep.Configuration;
using Lockstep.Conformance;

namespace Lockstep.Tests;

/// <summary>Bad input on the managed backend (rows of docs/bad-input.md).</summary>
public sealed class ManagedBadInput() : BadInputConformance(new ManagedBackendFactory().Create(new LockstepOptions()));

/// <summary>Several networks on one managed backend, on several threads.</summary>
public sealed class ManagedConcurrency() : ConcurrencyConformance(() => new ManagedBackendFactory().Create(new LockstepOptions()));

/// <summary>Impossible allocations on the managed backend fail up front.</summary>
public sealed class ManagedLargeInput() : LargeInputConformance(new ManagedBackendFactory().Create(new LockstepOptions()));

/// <summary>Memory stays flat over training steps on the managed backend.</summary>
public sealed class ManagedMemory() : MemoryConformance(new ManagedBackendFactory().Create(new LockstepOptions()));
