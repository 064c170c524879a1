using System.Globalization;

namespace Lockstep.Conformance;

/// <summary>
/// The random sweep's settings, from the environment: <c>LOCKSTEP_CONFORMANCE_CASES</c> (cases per op, dtype and
/// pair; default 300), <c>LOCKSTEP_CONFORMANCE_SEED</c> (a case seed printed by a failure: run only that case),
/// <c>LOCKSTEP_CONFORMANCE_RUN_SEED</c> (the sweep's seed; default 1, fixed so that CI runs the same cases).
/// </summary>
public sealed record ConformanceSettings(int Cases, ulong RunSeed, string? CaseSeed)
{
    public const int DefaultCases = 300;
    public const string CasesVariable = "LOCKSTEP_CONFORMANCE_CASES";
    public const string SeedVariable = "LOCKSTEP_CONFORMANCE_SEED";
    public const string RunSeedVariable = "LOCKSTEP_CONFORMANCE_RUN_SEED";

    public static ConformanceSettings FromEnvironment()
    {
        int cases = DefaultCases;
        if (Environment.GetEnvironmentVariable(CasesVariable) is { Length: > 0 } text
            && (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out cases) || cases < 1))
        {
            throw new ArgumentException($"{CasesVariable} must be a positive integer, got '{text}'");
        }
        ulong runSeed = 1;
        if (Environment.GetEnvironmentVariable(RunSeedVariable) is { Length: > 0 } seedText
            && !ulong.TryParse(seedText, NumberStyles.None, CultureInfo.InvariantCulture, out runSeed))
        {
            throw new ArgumentException($"{RunSeedVariable} must be a non-negative integer, got '{seedText}'");
        }
        string? caseSeed = Environment.GetEnvironmentVariable(SeedVariable) is { Length: > 0 } s ? s.Trim() : null;
        return new ConformanceSettings(cases, runSeed, caseSeed);
    }
}
