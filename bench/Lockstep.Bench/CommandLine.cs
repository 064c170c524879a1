using System.Globalization;
using Lockstep.Configuration;

namespace Lockstep.Bench;

/// <summary>Bad input on the command line: the CLI prints the message on one line and exits 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// A command's arguments, split in two: its own options (<c>--batch 16</c>, <c>--json=out.json</c>) and the
/// configuration switches that go on to <see cref="LockstepConfiguration.Build"/> (<c>--backend</c>, <c>--dtype</c>,
/// <c>--gemm</c>, <c>--device</c> and any <c>--Lockstep:Key value</c>). Anything else is an error naming it.
/// </summary>
public sealed class CommandLine
{
    private readonly Dictionary<string, string> _values = new(StringComparer.OrdinalIgnoreCase);

    private CommandLine(string command) => Command = command;

    public string Command { get; }
    public bool Help { get; private set; }

    /// <summary>Arguments for <see cref="LockstepConfiguration.Build"/>, in their original order.</summary>
    public List<string> ConfigurationArgs { get; } = [];

    /// <param name="command">The command's name, for messages.</param>
    /// <param name="args">The arguments after the command's name.</param>
    /// <param name="options">The command's own options, each taking one value (e.g. "--batch").</param>
    public static CommandLine Parse(string command, IReadOnlyList<string> args, IReadOnlyCollection<string> options)
    {
        var result = new CommandLine(command);
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (arg is "-h" or "--help" or "-?")
            {
                result.Help = true;
                continue;
            }
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
            {
                throw new UsageException($"{command}: unexpected argument '{arg}'; see 'lockstep {command} --help'");
            }

            // --name value  or  --name=value
            int eq = arg.IndexOf('=', StringComparison.Ordinal);
            string name = eq < 0 ? arg : arg[..eq];
            string? value = eq < 0 ? null : arg[(eq + 1)..];
            if (value is null)
            {
                if (i + 1 >= args.Count || IsOptionName(args[i + 1]))
                {
                    throw new UsageException($"{command}: {name} needs a value");
                }
                value = args[++i];
            }

            if (options.Contains(name, StringComparer.OrdinalIgnoreCase))
            {
                result._values[name] = value;
            }
            else if (LockstepConfiguration.ShortSwitches.ContainsKey(name)
                     || name.StartsWith("--" + LockstepOptions.Section + ":", StringComparison.OrdinalIgnoreCase))
            {
                // The configuration keeps the last value of a key, as the command line should.
                result.ConfigurationArgs.Add(name);
                result.ConfigurationArgs.Add(value);
            }
            else
            {
                throw new UsageException($"{command}: unknown option '{name}'; see 'lockstep {command} --help'");
            }
        }
        return result;
    }

    // A negative number is a value, not an option; only "--x" and "-x" name options.
    private static bool IsOptionName(string arg) =>
        arg.StartsWith("--", StringComparison.Ordinal) || (arg.StartsWith('-') && arg.Length > 1 && !char.IsAsciiDigit(arg[1]));

    public string? Get(string option) => _values.GetValueOrDefault(option);

    public string GetString(string option, string fallback) => Get(option) ?? fallback;

    /// <summary>A finite number (invariant culture).</summary>
    public double GetDouble(string option, double fallback)
    {
        string? text = Get(option);
        if (text is null) return fallback;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !double.IsFinite(value))
        {
            throw new UsageException($"{option} must be a number, got {text}");
        }
        return value;
    }

    /// <summary>An integer option that must be at least <paramref name="minimum"/>.</summary>
    public int GetInt(string option, int fallback, int minimum = 1)
    {
        string? text = Get(option);
        if (text is null) return fallback;
        string what = minimum switch
        {
            0 => "a non-negative integer",
            1 => "a positive integer",
            _ => $"an integer ≥ {minimum}",
        };
        if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value) || value < minimum)
        {
            throw new UsageException($"{option} must be {what}, got {text}");
        }
        return value;
    }
}
