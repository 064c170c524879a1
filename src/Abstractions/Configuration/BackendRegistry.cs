namespace Lockstep.Configuration;

/// <summary>Makes a backend from options. Each backend assembly provides one.</summary>
public interface IBackendFactory
{
    /// <summary>The registry name, lower case ("managed", "torch").</summary>
    string Name { get; }

    IBackend Create(LockstepOptions options);
}

/// <summary>Backends by name. An unknown name lists the known ones; a duplicate is rejected.</summary>
public sealed class BackendRegistry
{
    private readonly Dictionary<string, IBackendFactory> _factories = new(StringComparer.OrdinalIgnoreCase);

    public IReadOnlyCollection<string> Names => _factories.Keys.Order(StringComparer.Ordinal).ToArray();

    public BackendRegistry Register(IBackendFactory factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        if (!_factories.TryAdd(factory.Name, factory))
        {
            throw new ArgumentException($"a backend named '{factory.Name}' is already registered");
        }
        return this;
    }

    public bool Contains(string name) => _factories.ContainsKey(name);

    /// <summary>Creates the backend named by <paramref name="name"/>, or by options.Backend.</summary>
    public IBackend Create(LockstepOptions options, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        name ??= options.Backend;
        if (!_factories.TryGetValue(name, out var factory))
        {
            throw new ArgumentException($"unknown backend '{name}'; known backends: {string.Join(", ", Names)}");
        }
        return factory.Create(options);
    }
}
