using Lockstep.Conformance;
using Lockstep.Conformance.Reference;

namespace Lockstep.Tests;

/// <summary>The naive oracle itself is checked against central differences.</summary>
public sealed class NaiveGradientChecks() : GradientChecks(new NaiveBackend());
