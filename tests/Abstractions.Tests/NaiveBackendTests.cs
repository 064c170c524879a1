using Lockstep.Conformance;
using Lockstep.Conformance.Reference;

namespace Lockstep.Tests;

/// <summary>The naive oracle itself is checked against central differences.</summary>
public sealed class NaiveGradientChecks() : GradientChecks(new NaiveBackend());

/// <summary>The naive oracle rejects bad input with the same messages, through the same OpChecks.</summary>
public sealed class NaiveBadInput() : BadInputConformance(new NaiveBackend());

/// <summary>Several networks on the naive backend, on several threads.</summary>
public sealed class NaiveConcurrency() : ConcurrencyConformance(() => new NaiveBackend());

/// <summary>The naive oracle's destination overloads (IBackend's defaults: the allocating op, then Copy).</summary>
public sealed class NaiveDestinations() : DestinationConformance(new NaiveBackend());
